"""Label schemas of street-scene data sets and the maps between them.

The suite's driving models predict the CamVid 11-class schema (SegNet version); id 11 is
unlabelled and ignored by training and metrics. Cityscapes ids (labelIds, trainIds), the
Cityscapes colour palette (CARLA exports, many simulators) and SYNTHIA ids map into it.
"""

from __future__ import annotations

import numpy as np

IGNORE = 11
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car", "pedestrian",
                  "bicyclist")
# colours of the CamVid 11-class palette (SegNet tutorial), index 11 = unlabelled
CAMVID_PALETTE = np.array([
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192), (0, 0, 0)], dtype=np.uint8)

CITYSCAPES_TRAIN_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                            "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                            "motorcycle", "bicycle")
# Cityscapes labelId -> trainId (255 = ignore), from cityscapesScripts' labels.py
_LABEL_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                   26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CITYSCAPES_PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0),
    (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)], dtype=np.uint8)
# Cityscapes trainId -> CamVid id. Terrain (grass, soil, sand) has no CamVid class: ignored.
_TRAIN_TO_CAMVID = {0: 3, 1: 4, 2: 1, 3: 1, 4: 7, 5: 2, 6: 6, 7: 6, 8: 5, 9: IGNORE, 10: 0, 11: 9, 12: 10,
                    13: 8, 14: 8, 15: 8, 16: 8, 17: 10, 18: 10}
# Cityscapes labelIds without a trainId that still have a CamVid meaning
_LABEL_EXTRA_CAMVID = {9: 4, 14: 7, 15: 1, 16: 1, 18: 2, 29: 8, 30: 8}
# colours simulators add to the Cityscapes palette (CARLA 0.9.x): road line, guard rail, static, ...
_EXTRA_COLOURS = {(157, 234, 50): 3, (180, 165, 180): 7, (150, 100, 100): 1, (81, 0, 81): IGNORE,
                  (250, 170, 160): IGNORE, (110, 190, 160): IGNORE, (170, 120, 50): IGNORE,
                  (45, 60, 150): IGNORE, (145, 170, 100): IGNORE, (230, 150, 140): IGNORE, (0, 0, 0): IGNORE}
# SYNTHIA (RAND-CITYSCAPES) ids -> Cityscapes trainIds, as AdaptSegNet/FDA use them; 22 lane marking -> road
_SYNTHIA_TO_TRAIN = {3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10, 10: 11, 17: 12, 8: 13,
                     18: 14, 19: 15, 20: 16, 12: 17, 11: 18, 22: 0}


def _lut(mapping: dict[int, int], default: int, size: int = 256) -> np.ndarray:
    table = np.full(size, default, dtype=np.uint8)
    for k, v in mapping.items():
        table[k] = v
    return table


CITYSCAPES_LABEL_TO_TRAIN = _lut(_LABEL_TO_TRAIN, 255)
CITYSCAPES_TRAIN_TO_CAMVID = _lut(_TRAIN_TO_CAMVID, IGNORE)
CITYSCAPES_LABEL_TO_CAMVID = CITYSCAPES_TRAIN_TO_CAMVID[CITYSCAPES_LABEL_TO_TRAIN]
CITYSCAPES_LABEL_TO_CAMVID[list(_LABEL_EXTRA_CAMVID)] = list(_LABEL_EXTRA_CAMVID.values())
SYNTHIA_TO_CAMVID = CITYSCAPES_TRAIN_TO_CAMVID[_lut(_SYNTHIA_TO_TRAIN, 255)]


def _check_ids(label: np.ndarray) -> np.ndarray:
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"expected a 2D label map of ids, got shape {label.shape}")
    if label.dtype != np.uint8:
        if label.size and (label.min() < 0 or label.max() > 255):
            raise ValueError(f"label ids out of range 0..255 (min {label.min()}, max {label.max()})")
        label = label.astype(np.uint8)
    return label


def cityscapes_to_camvid(label: np.ndarray, kind: str = "labelIds") -> np.ndarray:
    """A Cityscapes label map (``kind`` ``"labelIds"`` as in gtFine and GTA5, or ``"trainIds"``) -> CamVid ids."""
    if kind not in ("labelIds", "trainIds"):
        raise ValueError(f"kind must be 'labelIds' or 'trainIds', got {kind!r}")
    table = CITYSCAPES_LABEL_TO_CAMVID if kind == "labelIds" else CITYSCAPES_TRAIN_TO_CAMVID
    return table[_check_ids(label)]


def synthia_to_camvid(label: np.ndarray) -> np.ndarray:
    """SYNTHIA class ids -> CamVid ids."""
    return SYNTHIA_TO_CAMVID[_check_ids(label)]


def palette_to_ids(rgb: np.ndarray, palette: np.ndarray, extra: dict | None = None, unknown: int = 255) -> np.ndarray:
    """A colour-coded label image ``(H, W, 3|4)`` -> ids: the index of each pixel's colour in ``palette``
    (or ``extra[colour]``); colours in neither get ``unknown``."""
    rgb = np.asarray(rgb)[..., :3].astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    keys = [(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in palette]
    values = list(range(len(palette)))
    for (r, g, b), v in (extra or {}).items():
        keys.append((r << 16) | (g << 8) | b)
        values.append(v)
    keys_arr, values_arr = np.array(keys), np.array(values)
    order = np.argsort(keys_arr)
    keys_arr, values_arr = keys_arr[order], values_arr[order]
    pos = np.clip(np.searchsorted(keys_arr, code), 0, len(keys_arr) - 1)
    return np.where(keys_arr[pos] == code, values_arr[pos], unknown).astype(np.uint8)


def cityscapes_colors_to_camvid(rgb: np.ndarray) -> np.ndarray:
    """A label image in the Cityscapes colour palette (CARLA and other simulators' exports) -> CamVid ids.

    Colours of neither palette are ignored (id 11)."""
    train = palette_to_ids(rgb, CITYSCAPES_PALETTE, unknown=254)
    out = CITYSCAPES_TRAIN_TO_CAMVID[np.where(train == 254, 255, train)]
    if (train == 254).any():  # simulator extras: road lines, guard rails, ...
        extra = palette_to_ids(rgb, np.zeros((0, 3), np.uint8), {k: v for k, v in _EXTRA_COLOURS.items()},
                               unknown=IGNORE)
        out = np.where(train == 254, extra, out)
    return out.astype(np.uint8)


def colorize(label: np.ndarray, palette: np.ndarray = CAMVID_PALETTE) -> np.ndarray:
    """Ids ``(H, W)`` -> RGB ``(H, W, 3)`` uint8 in ``palette`` (ids past its end are black)."""
    pal = np.zeros((256, 3), np.uint8)
    pal[: len(palette)] = palette
    return pal[_check_ids(label)]
