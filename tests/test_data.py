"""The data engine: loaders, splits, leakage checks, augmentations and corruptions."""

from __future__ import annotations

import io
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_data
from suite.core import SuiteError
from suite.core.data import (CORRUPTIONS, PRESETS, LabeledData, augmentation, corruption, find_leakage,
                             find_leakage_across, from_csv,
                             from_folder, from_npz, from_text_csv, groups_from_pattern, load_data, split_indices,
                             text_collate)
from suite.core.data.augment import add_background_clutter

RNG = np.random.default_rng(0)


def smooth_image(seed: int, size: int = 64, mode: str = "RGB") -> Image.Image:
    """A distinct, natural-looking (low-frequency) random image."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    return img.convert(mode)


def write_folder(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    for k, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            smooth_image(seed + 100 * k + i).save(root / name / f"{name}_{i}.png")
    return root


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ----------------------------------------------------------------------------- folders


def test_folder_finds_images_recursively_and_ignores_other_files(tmp_path):
    root = write_folder(tmp_path / "data", {"cat": 3, "dog": 2})
    (root / "dog" / "more").mkdir()
    smooth_image(99).save(root / "dog" / "more" / "deep.JPG")
    (root / "dog" / "notes.txt").write_text("not an image")
    data = from_folder(root)
    assert data.classes == ["cat", "dog"] and data.task == "binary" and data.modality == "image"
    assert data.class_counts() == {"cat": 3, "dog": 3}
    assert any(p.endswith("deep.JPG") for p in data.items)
    assert data.load(0).size == (64, 64) and data.load(0).mode == "RGB"
    assert data.skipped == [] and data.warnings == []


def test_folder_classes_argument_orders_and_selects(tmp_path):
    root = write_folder(tmp_path, {"a": 2, "b": 2, "c": 2})
    data = from_folder(root, classes=["c", "a"])
    assert data.classes == ["c", "a"]
    assert [Path(p).parent.name for p in data.items] == ["c", "c", "a", "a"]
    assert list(data.labels) == [0, 0, 1, 1]
    assert any("'b'" in w for w in data.warnings)


def test_folder_single_image_class_is_allowed_and_reported(tmp_path):
    data = from_folder(write_folder(tmp_path, {"common": 4, "rare": 1}))
    assert len(data) == 5
    assert any("'rare'" in w and "single" in w for w in data.warnings)


def _corrupt_bytes(kind: str) -> bytes:
    if kind == "empty":
        return b""
    if kind == "garbage":
        return bytes(RNG.integers(0, 256, 500, dtype=np.uint8))
    buffer = io.BytesIO()
    smooth_image(5).save(buffer, "PNG")
    return buffer.getvalue()[:-40]  # truncated PNG: the last chunk and its checksum are missing


@pytest.mark.parametrize("kind, suffix", [("empty", ".png"), ("garbage", ".jpg"), ("truncated", ".png")])
def test_folder_bad_file_is_skipped_or_raises(tmp_path, kind, suffix):
    root = write_folder(tmp_path, {"a": 2, "b": 2})
    bad = root / "b" / f"bad{suffix}"
    bad.write_bytes(_corrupt_bytes(kind))
    data = from_folder(root, skip_bad=True)
    assert len(data) == 4 and str(bad) not in data.items
    assert [p for p, _ in data.skipped] == [str(bad)]
    with pytest.raises(SuiteError, match="bad"):
        from_folder(root, skip_bad=False)


def _class_folder_without_images(root: Path) -> Path:
    (root / "a").mkdir()
    (root / "a" / "notes.txt").write_text("x")
    return root


FOLDER_ERRORS = [
    # builder of the bad input, the expected message part
    (lambda p: p / "missing", "folder not found"),
    (lambda p: write_csv(p / "file.csv", "x"), "not a folder"),
    (lambda p: p, "no class folders"),
    (_class_folder_without_images, "no images"),
]


@pytest.mark.parametrize("make, message", FOLDER_ERRORS)
def test_folder_errors_name_the_folder(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(SuiteError, match=message) as err:
        from_folder(path)
    assert str(path) in str(err.value)


def test_folder_missing_class_lists_present_folders(tmp_path):
    root = write_folder(tmp_path, {"a": 1, "b": 1})
    with pytest.raises(SuiteError, match=r"\['zebra'\].*\['a', 'b'\]"):
        from_folder(root, classes=["a", "zebra"])


# ----------------------------------------------------------------------------- CSV manifests


@pytest.fixture
def image_dir(tmp_path):
    (tmp_path / "img").mkdir()
    for i in range(6):
        smooth_image(i).save(tmp_path / "img" / f"p{i // 2}_{i}.png")
    return tmp_path


def test_csv_manifest_with_groups_and_root(image_dir):
    rows = "\n".join(f"{i},img/p{i // 2}_{i}.png,{'sick' if i % 2 else 'well'},p{i // 2}" for i in range(6))
    (image_dir / "meta").mkdir()
    manifest = write_csv(image_dir / "meta" / "m.csv", "id,file,diagnosis,patient\n" + rows + "\n")
    data = from_csv(manifest, path_col="file", label_col="diagnosis", group_col="patient", root=image_dir)
    assert data.classes == ["sick", "well"] and list(data.labels) == [1, 0, 1, 0, 1, 0]
    assert data.groups == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert data.load(5).size == (64, 64)


def test_csv_multilabel_and_unlabelled(image_dir):
    manifest = write_csv(image_dir / "m.csv", "path,label\nimg/p0_0.png,effusion|mass\nimg/p0_1.png,mass\n"
                                              "img/p1_2.png,\nimg/p1_3.png,effusion\n")
    data = from_csv(manifest)
    assert data.task == "multilabel" and data.classes == ["effusion", "mass"]
    assert data.labels.tolist() == [[1, 1], [0, 1], [-1, -1], [1, 0]]
    assert data.class_counts() == {"effusion": 2, "mass": 2}
    assert any("no label" in w for w in data.warnings)


def test_csv_latin1_is_read(image_dir):
    manifest = write_csv(image_dir / "m.csv", "path,label\nimg/p0_0.png,café\nimg/p0_1.png,thé\n", "latin-1")
    data = from_csv(manifest)
    assert data.classes == ["café", "thé"]
    assert any("latin-1" in w for w in data.warnings)


CSV_ERRORS = [
    # CSV text, keyword arguments, expected message part
    ("file,label\nimg/p0_0.png,a\n", {}, r"missing path column 'path'; available columns: \['file', 'label'\]"),
    ("path,label\nimg/p0_0.png,a\nimg/p0_1.png,b\n", {"classes": ["a"]}, r"not in the given classes.*'b' \(line 3\)"),
    ("path,label\nimg/p0_0.png,a,extra\n", {}, "malformed CSV, 1 of 1 rows do not fit the header; line 2"),
    ('path,label\n"img/p0_0.png,a\n', {}, "malformed CSV"),
    ("path,label\n", {}, "no data rows"),
    ("", {}, "empty file"),
    ("path,label\nimg/nothere.png,a\n", {"skip_bad": False}, "nothere.png: file not found"),
    ("path,label\nimg/nothere.png,a\n", {}, "none of the 1 listed images"),
]


@pytest.mark.parametrize("text, kw, message", CSV_ERRORS)
def test_csv_errors_name_the_file(image_dir, text, kw, message):
    manifest = write_csv(image_dir / "m.csv", text)
    with pytest.raises(SuiteError, match=message) as err:
        from_csv(manifest, **kw)
    assert "m.csv" in str(err.value) or "nothere.png" in str(err.value)


# ----------------------------------------------------------------------------- text


TEXT_FILES = [
    ("t.csv", 'text,label\n"Profit rose, strongly",positive\nLoss widened,negative\n'),
    ("t.jsonl", '{"text": "Profit rose, strongly", "label": "positive"}\n'
                '{"text": "Loss widened", "label": "negative"}\n'),
    ("t.json", json.dumps([{"text": "Profit rose, strongly", "label": "positive"},
                           {"text": "Loss widened", "label": "negative"}])),
]


@pytest.mark.parametrize("name, content", TEXT_FILES)
def test_text_files_load_alike(tmp_path, name, content):
    data = load_data(write_csv(tmp_path / name, content))
    assert data.modality == "text" and data.items == ["Profit rose, strongly", "Loss widened"]
    assert data.classes == ["negative", "positive"] and list(data.labels) == [1, 0]
    assert data.load(1) == "Loss widened"


@pytest.mark.parametrize("name, content, message", [
    ("t.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", \n', "malformed JSON"),
    ("t.json", '{"text": "a"}', "expected a JSON list"),
    ("t.jsonl", '{"sentence": "a", "label": "x"}\n', r"missing text column 'text'; available columns: \['sentence'"),
    ("t.csv", "text,label\nhello,\n", "no labelled rows"),
])
def test_text_errors_name_the_file(tmp_path, name, content, message):
    path = write_csv(tmp_path / name, content)
    with pytest.raises(SuiteError, match=message) as err:
        from_text_csv(path)
    assert str(path) in str(err.value)


def test_text_collate_tokenises_and_stacks_labels(tmp_path):
    import torch

    from suite.core.data import TorchDataset

    data = from_text_csv(write_csv(tmp_path / "t.csv", "text,label\nup up up,pos\ndown,neg\n"))
    calls = []

    def tokenizer(texts, padding, truncation, max_length, return_tensors):
        calls.append((texts, max_length))
        ids = [[len(w) for w in t.split()][:max_length] for t in texts]
        width = max(map(len, ids))
        return {"input_ids": torch.tensor([i + [0] * (width - len(i)) for i in ids])}

    loader = torch.utils.data.DataLoader(TorchDataset(data, None), batch_size=2, collate_fn=text_collate(tokenizer, 2))
    encoded, labels = next(iter(loader))
    assert calls == [(["up up up", "down"], 2)]
    assert encoded["input_ids"].tolist() == [[2, 2], [4, 0]]
    assert labels.dtype == torch.int64 and labels.tolist() == [1, 0]


# ----------------------------------------------------------------------------- npz


NPZ_CASES = [
    # images shape, labels, kwargs, expected modality, task, item shape
    ((6, 8, 8), np.array([[0], [1], [1], [0], [1], [0]]), {}, "image", "binary", (8, 8)),
    ((6, 8, 8, 3), np.array([0, 1, 2, 0, 1, 2]), {}, "image", "multiclass", (8, 8, 3)),
    ((6, 3, 8, 8), np.array([0, 1, 2, 0, 1, 2]), {"channel_last": False}, "image", "multiclass", (8, 8, 3)),
    ((6, 4, 8, 8), np.array([0, 1, 0, 1, 0, 1]), {}, "volume", "binary", (4, 8, 8)),
    ((6, 8, 8), np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1, 2]] | np.eye(3, dtype=np.uint8)[[1, 2, 0, 1, 2, 0]],
     {"classes": ["x", "y", "z"]}, "image", "multilabel", (8, 8)),
]


@pytest.mark.parametrize("shape, labels, kw, modality, task, item_shape", NPZ_CASES)
def test_npz_layouts(tmp_path, shape, labels, kw, modality, task, item_shape):
    images = RNG.integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "d.npz"
    np.savez(path, train_images=images, train_labels=labels, val_images=images[:2], val_labels=labels[:2])
    data = from_npz(path, **kw)
    assert (len(data), data.modality, data.task) == (6, modality, task)
    assert np.asarray(data.items[0]).shape == item_shape
    assert data.labels.tolist() == (labels.reshape(6, -1) if task == "multilabel" else labels.ravel()).tolist()
    loaded = data.load(0)
    if modality == "volume":
        assert loaded.shape == item_shape
    else:
        assert loaded.size == (8, 8) and loaded.mode == ("RGB" if len(item_shape) == 3 else "L")
    assert len(from_npz(path, split=["train", "val"], **kw)) == 8


def test_npz_errors_name_the_file(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, train_images=np.zeros((3, 4, 4), np.uint8), train_labels=np.zeros(2))
    with pytest.raises(SuiteError, match=r"d\.npz.*no split \['test'\].*splits present: \['train'\]"):
        from_npz(path, split="test")
    with pytest.raises(SuiteError, match=r"d\.npz \[train\]: 3 images but 2 labels"):
        from_npz(path)
    np.savez(path, train_images=np.array([object()] * 2), train_labels=np.zeros(2))
    with pytest.raises(SuiteError, match="object arrays are refused"):
        from_npz(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(SuiteError, match=r"d\.npz: not a readable \.npz"):
        from_npz(path)


def test_real_medmnist_npz():
    pneumonia = from_npz(shared_data("medical", "pneumoniamnist.npz"), classes=["normal", "pneumonia"])
    assert (len(pneumonia), pneumonia.task, pneumonia.modality) == (3882, "binary", "image")
    assert pneumonia.load(0).size == (28, 28) and pneumonia.load(0).mode == "L"
    assert sum(pneumonia.class_counts().values()) == 3882
    adrenal = from_npz(shared_data("medical", "adrenalmnist3d.npz"), split="test")
    assert (len(adrenal), adrenal.modality) == (298, "volume") and adrenal.load(0).shape == (28, 28, 28)


# ----------------------------------------------------------------------------- dispatch and torch


def test_load_data_dispatches_by_path(tmp_path, image_dir):
    assert load_data(write_folder(tmp_path / "f", {"a": 1, "b": 1})).source.startswith("image folder")
    assert load_data(write_csv(image_dir / "m.csv", "path,label\nimg/p0_0.png,a\n")).modality == "image"
    assert load_data(write_csv(tmp_path / "t.csv", "text,label\nhi,a\n")).modality == "text"
    np.savez(tmp_path / "d.npz", train_images=np.zeros((2, 4, 4), np.uint8), train_labels=np.array([0, 1]))
    assert load_data(tmp_path / "d.npz").modality == "image"
    with pytest.raises(SuiteError, match=r"x\.parquet: cannot tell how to load"):
        load_data(write_csv(tmp_path / "x.parquet", "?"))
    with pytest.raises(SuiteError, match="nowhere: no such file"):
        load_data(tmp_path / "nowhere")


def test_subset_and_torch_dataset_labels(tmp_path):
    import torch

    from suite.core.data import TorchDataset

    items = [RNG.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(4)]
    data = LabeledData(items, np.array([0, 1, 1, 0]), ["a", "b"], "image", groups=["g0", "g1", "g2", "g3"])
    part = data.subset([3, 1])
    assert part.groups == ["g3", "g1"] and part.labels.tolist() == [0, 1] and part.items[0] is items[3]
    assert data.subset(np.array([True, False, False, True])).groups == ["g0", "g3"]
    dataset = TorchDataset(data, transform=lambda im: torch.as_tensor(np.array(im), dtype=torch.float32)[None])
    x, y = dataset[1]
    assert x.shape == (1, 8, 8) and y.dtype == torch.int64 and y.ndim == 0 and int(y) == 1
    multi = LabeledData(items, np.array([[1, 0], [1, 1], [0, 0], [0, 1]]), ["a", "b"], "image", task="multilabel")
    _, y = TorchDataset(multi, lambda im: im)[1]
    assert y.dtype == torch.float32 and y.tolist() == [1.0, 1.0]
    assert len(pickle.loads(pickle.dumps(TorchDataset(data)))) == 4  # DataLoader workers need this


# ----------------------------------------------------------------------------- splits


SPLIT_CASES = [
    # labels, val, test
    (np.array([0] * 80 + [1] * 20), 0.2, 0.0),
    (np.array([0] * 50 + [1] * 30 + [2] * 20), 0.2, 0.1),
    (np.repeat(np.arange(10), 12), 0.25, 0.25),
    (np.array([0] * 60 + [1] * 30 + [-1] * 10), 0.1, 0.1),
]


def _check_partition(splits, n):
    everything = np.concatenate(list(splits.values()))
    assert len(everything) == n and set(everything.tolist()) == set(range(n))  # disjoint and covering


@pytest.mark.parametrize("labels, val, test", SPLIT_CASES)
def test_splits_are_disjoint_covering_and_stratified(labels, val, test):
    splits = split_indices(labels, val=val, test=test, seed=3)
    assert set(splits) == ({"train", "val", "test"} if test else {"train", "val"})
    _check_partition(splits, len(labels))
    for name, fraction in (("val", val), ("test", test), ("train", 1 - val - test)):
        if name in splits:
            assert abs(len(splits[name]) - fraction * len(labels)) <= 1
            for c in np.unique(labels):
                share = (labels[splits[name]] == c).mean()
                assert abs(share - (labels == c).mean()) <= 0.06, (name, c)


def test_splits_are_deterministic_by_seed():
    labels = np.repeat([0, 1, 2], 30)
    assert all(np.array_equal(a, b) for a, b in zip(split_indices(labels, seed=1).values(),
                                                    split_indices(labels, seed=1).values()))
    assert not np.array_equal(split_indices(labels, seed=1)["val"], split_indices(labels, seed=2)["val"])


@pytest.mark.parametrize("labels, test", [
    (np.array([0, 0, 0, 0, 0, 0, 0, 1]), 0.2),  # a class with a single member
    (np.array([0, 1, 2, 3, 4, 5]), 0.2),  # every class a singleton
    (np.array([0, 1]), 0.0),
])
def test_splits_with_tiny_classes_never_fail(labels, test):
    splits = split_indices(labels, val=0.2, test=test)
    _check_partition(splits, len(labels))
    assert all(len(idx) >= 1 for idx in splits.values())


def test_lone_class_member_stays_in_training():
    labels = np.array([0] * 9 + [1])
    assert 9 in split_indices(labels, val=0.3, test=0.2)["train"]


def test_single_item_cannot_be_held_out():
    with pytest.warns(UserWarning, match="empty"):
        splits = split_indices(np.array([7]), val=0.2)
    assert splits["train"].tolist() == [0] and len(splits["val"]) == 0


def test_multilabel_stratifies_on_most_frequent_positive():
    labels = np.zeros((100, 3), dtype=int)
    labels[:70, 0] = 1  # class 0 frequent
    labels[60:90, 1] = 1  # class 1 overlaps with 0 on 60..69
    labels[95:, 2] = 1
    splits = split_indices(labels, val=0.2)
    _check_partition(splits, 100)
    assert abs(labels[splits["val"], 0].sum() - 14) <= 1  # 70 rows have class 0 as their stratum
    assert labels[splits["val"], 2].sum() == 1  # 5 rows have only class 2: a fifth of them


@pytest.mark.parametrize("n_groups, val, test", [(30, 0.2, 0.1), (12, 0.25, 0.0), (3, 0.2, 0.0)])
def test_group_splits_never_share_a_group(n_groups, val, test):
    rng = np.random.default_rng(n_groups)
    sizes = rng.integers(1, 8, n_groups)
    groups = np.repeat([f"patient{g}" for g in range(n_groups)], sizes)
    labels = np.repeat(rng.integers(0, 2, n_groups), sizes)
    splits = split_indices(labels, val=val, test=test, groups=groups, seed=0)
    _check_partition(splits, len(labels))
    members = [set(groups[idx]) for idx in splits.values()]
    assert all(not (a & b) for i, a in enumerate(members) for b in members[i + 1:])
    assert all(len(idx) > 0 for idx in splits.values())
    if n_groups >= 30:
        assert abs(len(splits["val"]) / len(labels) - val) < 0.08


@pytest.mark.parametrize("kw", [{"val": 1.0}, {"val": 0.6, "test": 0.5}, {"val": -0.1}])
def test_split_fractions_are_checked(kw):
    with pytest.raises(SuiteError, match="fractions"):
        split_indices(np.zeros(10), **kw)


def test_groups_from_pattern():
    paths = ["/d/pneumonia/person12_bacteria_3.jpeg", "/d/normal/person12_virus_9.jpeg", "/d/x/person3_v_1.jpeg"]
    assert groups_from_pattern(paths, r"(person\d+)_") == ["person12", "person12", "person3"]
    assert groups_from_pattern(["/scans/pat7/a.png", "/scans/pat8/b.png"], r"pat\d+") == ["pat7", "pat8"]
    with pytest.raises(SuiteError, match=r"/d/odd\.jpeg: file name does not match.*\(1 of 2"):
        groups_from_pattern([paths[0], "/d/odd.jpeg"], r"(person\d+)_")
    with pytest.raises(SuiteError, match="not a valid regular expression"):
        groups_from_pattern(paths, r"(unclosed")


# ----------------------------------------------------------------------------- leakage


@pytest.fixture
def clean_folder(tmp_path):
    return from_folder(write_folder(tmp_path / "clean", {"a": 12, "b": 12}))


def _jpeg_resized(path: str, size: int) -> Image.Image:
    buffer = io.BytesIO()
    Image.open(path).resize((size, size), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=70)
    return Image.open(buffer)


def test_leakage_clean_data_reports_nothing(clean_folder):
    report = find_leakage(clean_folder, split_indices(clean_folder.labels, val=0.25, test=0.25))
    assert (report["n_exact"], report["n_near"], report["groups_shared"]) == (0, 0, [])
    assert "0 exact" in report["summary"]


def test_leakage_finds_planted_exact_and_near_duplicates(tmp_path, clean_folder):
    source_exact, source_near = clean_folder.items[0], clean_folder.items[13]
    copy = Path(source_exact).parent / "copy.png"
    Image.open(source_exact).save(copy)
    near = Path(source_near).parent / "near.jpg"
    _jpeg_resized(source_near, 48).save(near)
    data = from_folder(Path(source_exact).parents[1])
    index = {p: i for i, p in enumerate(data.items)}
    in_train = [i for i in range(len(data)) if i not in (index[str(copy)], index[str(near)])]
    splits = {"train": np.array(in_train), "val": np.array([index[str(copy)], index[str(near)]])}
    report = find_leakage(data, splits)
    assert report["n_exact"] == 1 and report["n_near"] == 1
    exact, close = report["exact"][0], report["near"][0]
    assert {exact["a"], exact["b"]} == {index[source_exact], index[str(copy)]}
    assert {exact["split_a"], exact["split_b"]} == {"train", "val"}
    assert {close["item_a"], close["item_b"]} == {source_near, str(near)} and close["distance"] <= 4
    # the same copies inside training are reported too, inside validation they are not
    assert find_leakage(data, {"train": np.arange(len(data)), "val": np.array([], int)})["n_exact"] == 1
    only_val = {"train": np.array(in_train[1:]), "val": np.array([index[source_exact], index[str(copy)]])}
    assert find_leakage(data, only_val)["n_exact"] == 0


def test_leakage_reports_shared_groups_and_text_duplicates():
    texts = ["Profits rose sharply.", "Profits rose sharply.", "Loss  WIDENED", "loss widened", "Guidance cut"]
    data = LabeledData(texts, np.array([0, 0, 1, 1, 1]), ["pos", "neg"], "text", groups=["c1", "c1", "c2", "c3", "c2"])
    report = find_leakage(data, {"train": np.array([0, 2]), "val": np.array([1, 3, 4])})
    assert (report["n_exact"], report["n_near"]) == (1, 1)
    assert (report["exact"][0]["a"], report["exact"][0]["b"]) == (0, 1)
    assert (report["near"][0]["a"], report["near"][0]["b"]) == (2, 3)
    assert report["groups_shared"] == ["c1", "c2"]


def test_leakage_across_given_sets_finds_copies_between_them():
    texts = ["Profits rose sharply.", "Sales fell.", "Guidance cut", "Margins held."]
    train = LabeledData(texts[:3], np.array([0, 1, 1]), ["pos", "neg"], "text")
    val = LabeledData(["Sales  fell.", texts[3]], np.array([1, 0]), ["pos", "neg"], "text")
    test = LabeledData([texts[0]], np.array([0]), ["pos", "neg"], "text")
    report = find_leakage_across({"train": train, "val": val, "test": test})
    assert (report["n_exact"], report["n_near"]) == (1, 1)
    assert {report["exact"][0]["split_a"], report["exact"][0]["split_b"]} == {"train", "test"}
    assert find_leakage_across({"train": train, "val": None, "test": None})["n_exact"] == 0


def test_leakage_is_fast_on_5000_small_images():
    base = RNG.integers(0, 256, (5000, 7, 7), dtype=np.uint8)
    items = [np.asarray(Image.fromarray(b).resize((28, 28), Image.Resampling.BICUBIC)) for b in base]
    items[4999] = items[10].copy()
    data = LabeledData(items, np.zeros(5000, dtype=np.int64), ["x"], "image")
    start = time.perf_counter()
    report = find_leakage(data, {"train": np.arange(4000), "val": np.arange(4000, 5000)})
    assert time.perf_counter() - start < 20
    assert report["n_exact"] == 1 and report["exact"][0]["b"] == 4999


def test_leakage_on_real_plantvillage_is_fast():
    data = from_folder(shared_data("agriculture", "plantvillage_tomato"))
    assert (len(data), len(data.classes)) == (1200, 10)
    start = time.perf_counter()
    report = find_leakage(data, split_indices(data.labels, val=0.2, seed=0))
    assert time.perf_counter() - start < 30
    assert report["n_near"] + report["n_exact"] < 10  # a curated set: at most a few duplicates


# ----------------------------------------------------------------------------- augmentation


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("size", [None, 48])
def test_presets_keep_mode_and_give_requested_size(preset, mode, size):
    img = smooth_image(1, 64, mode)
    aug = augmentation(preset, size=size, seed=0)
    outputs = [aug(img) for _ in range(4)]
    assert all(o.mode == mode and o.size == ((size, size) if size else (64, 64)) for o in outputs)


def test_none_is_identity_and_others_vary():
    img = smooth_image(2)
    assert np.array_equal(np.asarray(augmentation("none")(img)), np.asarray(img))
    field = augmentation("field", seed=0)
    outputs = [np.asarray(field(img), dtype=int) for _ in range(6)]
    assert any(np.abs(o - np.asarray(img, dtype=int)).mean() > 2 for o in outputs)
    again = augmentation("field", seed=0)
    assert all(np.array_equal(o, np.asarray(again(img), dtype=int)) for o in outputs)  # seeded: reproducible


def test_field_mix_gives_about_half_the_images_the_field_preset():
    img = smooth_image(4)
    mix = augmentation("field_mix", size=48, seed=0)
    used = []
    build = mix._pipeline
    mix._pipeline = lambda preset, h, w: used.append(preset) or build(preset, h, w)
    for _ in range(200):
        mix(img)
    assert set(used) == {"field", "light"}
    assert 0.4 < used.count("field") / len(used) < 0.6


def test_medical_preset_does_not_change_colour():
    img = Image.fromarray(np.stack([np.asarray(smooth_image(3, mode="L"))] * 3, axis=-1))
    medical = augmentation("medical", seed=0)
    for _ in range(5):
        out = np.asarray(medical(img), dtype=int)
        assert np.abs(out[..., 0] - out[..., 1]).max() <= 1 and np.abs(out[..., 1] - out[..., 2]).max() <= 1


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(SuiteError, match=r"'fancy'.*\['field', 'field_mix', 'light', 'medical', 'none', 'standard'\]"):
        augmentation("fancy")


def test_background_clutter_replaces_plain_background_only():
    yy, xx = np.mgrid[:64, :64]
    leaf = (yy - 32) ** 2 + (xx - 32) ** 2 < 15 ** 2
    img = np.full((64, 64, 3), 200, np.uint8)
    img[leaf] = (40, 140, 40)
    out = add_background_clutter(img, np.random.default_rng(0)).astype(int)
    inner_leaf = (yy - 32) ** 2 + (xx - 32) ** 2 < 11 ** 2  # the rim is blended softly
    assert np.abs(out[inner_leaf] - img[inner_leaf]).max() <= 1
    assert np.abs(out[~leaf] - 200).mean() > 20  # the backdrop is now textured


def test_workers_get_different_augmentations():
    import torch

    from suite.core.data import TorchDataset

    data = LabeledData([np.asarray(smooth_image(4))] * 8, np.zeros(8, dtype=np.int64), ["x"], "image")
    to_array = augmentation("standard", seed=0)
    dataset = TorchDataset(data, lambda im: torch.as_tensor(np.array(to_array(im))))
    # a seeded loader: worker seeds are fixed, so the test is deterministic; items alternate workers
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2, shuffle=False,
                                         generator=torch.Generator().manual_seed(0))
    outputs = [x for x, _ in loader]
    worker0, worker1 = torch.stack(outputs[0::2]), torch.stack(outputs[1::2])
    assert not torch.equal(worker0, worker1)  # without per-worker reseeding both would repeat one stream


# ----------------------------------------------------------------------------- corruptions


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruptions_are_deterministic_and_grow_with_severity(name):
    img = smooth_image(7, 96)
    change = []
    for severity in (1, 5):
        corrupt = corruption(name, severity, seed=0)
        out = corrupt(img)
        assert out.size == img.size and out.mode == "RGB"
        assert np.array_equal(np.asarray(out), np.asarray(corrupt(img)))
        change.append(np.abs(np.asarray(out, dtype=float) - np.asarray(img, dtype=float)).mean())
    assert change[1] > change[0] > 0
    assert corruption(name, 3)(img.convert("L")).mode == "L"


def test_required_corruptions_exist_and_bad_arguments_fail():
    assert {"blur", "jpeg", "shadow", "glare", "noise", "brightness", "perspective"} <= set(CORRUPTIONS)
    with pytest.raises(SuiteError, match=r"'fog'.*\['blur'"):
        corruption("fog", 1)
    with pytest.raises(SuiteError, match="1 to 5"):
        corruption("blur", 6)
