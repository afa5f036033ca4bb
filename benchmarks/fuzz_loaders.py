"""Property-based fuzzing of every input loader: only SuiteError may escape, whatever the bytes.

Each loader gets generated inputs from hypothesis: random bytes, valid files with random byte flips,
truncations, insertions and overwritten size fields, and structured files with hostile content
(paths with ``..``, links, NaN pixels, odd encodings). Any exception other than a SuiteError is a
failure. ``tests/test_fuzz.py`` runs the same targets with a few hundred examples in CI.

    .venv/bin/python benchmarks/fuzz_loaders.py                 # ~1,500 inputs per loader, >10,000 in all
    .venv/bin/python benchmarks/fuzz_loaders.py --examples 200 --only image_bytes csv_text
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets offline mode and thread policy before torch loads)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="suite-fuzz-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)


# ----------------------------------------------------------------------------- mutations of valid files


@st.composite
def mutated(draw, seeds: list[bytes], max_ops: int = 4) -> bytes:
    """A seed file with a few random edits: byte flips, a truncation, an insertion, an overwritten
    32-bit field (image sizes, chunk lengths and zip offsets live in such fields)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "int32", "zero"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "int32" and len(data) >= at + 4:
            value = draw(st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 50000, 65536]))
            data[at:at + 4] = value.to_bytes(4, draw(st.sampled_from(["big", "little"])))
        elif op == "zero" and data:
            data[at:at + draw(st.integers(1, 64))] = b"\0" * len(data[at:at + 64])
    return bytes(data)


def _image_seeds() -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    seeds = []
    for img, fmt in [(rgb, "PNG"), (rgb, "JPEG"), (rgb.convert("CMYK"), "JPEG"), (rgb.convert("RGBA"), "PNG"),
                     (rgb.convert("P"), "PNG"), (rgb.convert("P"), "GIF"), (rgb.convert("L"), "BMP"),
                     (rgb, "WEBP"), (rgb.convert("LA"), "PNG"), (rgb.convert("1"), "PNG"),
                     (Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16)), "PNG"),
                     (rgb.convert("F"), "TIFF"), (rgb, "TIFF"), (rgb, "PPM"), (rgb.convert("I"), "TIFF")]:
        buf = io.BytesIO()
        img.save(buf, fmt)
        seeds.append(buf.getvalue())
    return seeds


# ----------------------------------------------------------------------------- targets


def _write(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def image_bytes(data: bytes) -> None:
    """``read_image`` on an upload's bytes and on the same bytes as a file in a folder data set."""
    from suite.core.data import from_folder
    from suite.core.io import check_image, read_image

    try:
        img = read_image(data, name="upload.png")
        assert img.mode in ("RGB", "L") and img.width > 0 and img.height > 0
    except _suite_error():
        pass
    folder = WORK / "images"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "x.png").write_bytes(data)
    Path(folder / "a" / "ok.png").write_bytes(_image_seeds_cached()[0])
    data_set = from_folder(folder, skip_bad=True)
    assert str(folder / "a" / "ok.png") in data_set.items  # the good file is never lost
    for i in range(len(data_set)):
        data_set.load(i)  # what passed the check also loads
    assert (check_image(folder / "a" / "x.png") is None) == (len(data_set) == 2)


def image_array(arr: np.ndarray) -> None:
    from suite.core.io import read_image

    try:
        img = read_image(arr, name="array")
        assert img.mode in ("RGB", "L")
    except _suite_error():
        pass


def csv_bytes(data: bytes) -> None:
    """Text CSVs and image manifests (``load_data`` chooses by the header)."""
    from suite.core.data import from_text_csv, load_data

    path = _write("table.csv", data)
    for load in (from_text_csv, load_data):
        try:
            result = load(path)
            assert len(result.items) == len(result.labels) > 0
        except _suite_error():
            pass


def json_bytes(data: bytes) -> None:
    from suite.core.data import from_text_csv

    for name in ("texts.json", "texts.jsonl"):
        path = _write(name, data)
        try:
            result = from_text_csv(path)
            assert len(result.items) == len(result.labels) > 0
        except _suite_error():
            pass


def text_lines(data: bytes) -> None:
    """``sentence@label`` lines (the Financial PhraseBank format) and unlabelled text lines."""
    from suite.core.explore_data import load_items

    path = _write("lines.txt", data)
    for sep in ("@", None):
        try:
            result = load_items(path, label_sep=sep)
            assert len(result.items) == len(result.labels) > 0
        except _suite_error():
            pass


def npz_bytes(data: bytes) -> None:
    """``from_npz`` with one split and two, and ``load_items`` (all splits, as `suite explore` reads it)."""
    from suite.core.data import from_npz
    from suite.core.explore_data import load_items

    path = _write("data.npz", data)
    for load in (lambda p: from_npz(p, split="train"), lambda p: from_npz(p, split=["train", "val"]), load_items):
        try:
            result = load(path)
            assert len(result.items) == len(result.labels)
        except _suite_error():
            pass


def zip_bytes(data: bytes) -> None:
    """``safe_extract_zip``: refuses or extracts, and never writes outside the destination."""
    from suite.core.archive import safe_extract_zip

    sandbox = WORK / "zip"
    shutil.rmtree(sandbox, ignore_errors=True)
    (sandbox / "dest").mkdir(parents=True)
    try:
        safe_extract_zip(data, sandbox / "dest", max_files=50, max_bytes=1 << 20)
    except _suite_error():
        assert not any(p.is_file() for p in (sandbox / "dest").rglob("*"))  # a refused zip leaves nothing
    assert [p.name for p in sandbox.iterdir()] == ["dest"]  # nothing escaped


def solution_config(data: bytes) -> None:
    """``Solution.load`` on a bundle whose ``config.json`` was edited (an untrusted upload)."""
    from suite.core import Solution

    bundle = _solution_cached()
    (bundle / "config.json").write_bytes(data)
    try:
        Solution.load(bundle)
    except _suite_error():
        pass


# ----------------------------------------------------------------------------- strategies


_cache: dict[str, object] = {}


def _suite_error():
    from suite.core.errors import SuiteError

    return SuiteError


def _image_seeds_cached() -> list[bytes]:
    if "images" not in _cache:
        _cache["images"] = _image_seeds()
    return _cache["images"]


def _solution_cached() -> Path:
    if "solution" not in _cache:
        from suite.core import Solution, create_model

        model = create_model("small:cnn?width=4&size=16", num_classes=2, pretrained=False)
        path = Solution(model, ["a", "b"]).save(WORK / "solution")
        _cache["solution"] = path
        _cache["solution_config"] = (path / "config.json").read_bytes()
    return _cache["solution"]


CSV_ALPHABET = st.sampled_from(list("abc ,;\t\"'\n\r|@é") + ["\x00", "\u2028"])
CELLS = st.one_of(st.text(CSV_ALPHABET, max_size=12), st.sampled_from(["path", "label", "text", "a/1.png", "/etc"]))


@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.sampled_from(["text,label", "path,label", "text;label", "text\tlabel", "path,label,group",
                                   "label,text", ""]))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=4), max_size=8))
    text = header + "\n" + "\n".join(",".join(r) for r in rows)
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-8-sig"]))
    return text.encode(encoding, errors="replace")


def json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["text", "label", "x", ""]) | st.text(max_size=4), inner, max_size=4)),
        max_leaves=12)


@st.composite
def json_files(draw) -> bytes:
    value = draw(json_values())
    if draw(st.booleans()):
        return "\n".join(json.dumps(v) for v in (value if isinstance(value, list) else [value])).encode()
    return json.dumps(value).encode()


@st.composite
def phrasebank_files(draw) -> bytes:
    line = st.builds(lambda t, s, lab: f"{t}{s}{lab}", st.text(CSV_ALPHABET, max_size=30),
                     st.sampled_from(["@", "@@", "", " @ "]),
                     st.sampled_from(["positive", "negative", "neutral", "", "pos@itive"]))
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(draw(st.lists(line, max_size=10)))
    return text.encode(draw(st.sampled_from(["utf-8", "latin-1", "utf-16"])), errors="replace")


@st.composite
def npz_files(draw) -> bytes:
    keys = draw(st.lists(st.sampled_from(["train_images", "train_labels", "val_images", "val_labels", "x"]),
                         unique=True, max_size=5))
    arrays = {}
    for key in keys:
        dtype = draw(st.sampled_from([np.uint8, np.float32, np.int64, np.bool_, object, "U3"]))
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4))
        if dtype is object:
            arrays[key] = np.array([{"pickled": 1}] * 2, dtype=object)
        else:
            arrays[key] = np.zeros(shape, dtype=dtype)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


ZIP_NAMES = st.one_of(
    st.sampled_from(["a/1.png", "../up.png", "/abs.png", "C:/x.png", "a/../../b.png", "\\win\\x.png", ".hidden",
                     "__MACOSX/._a", "a/", "a", "a/b", "x\0y.png", "é/ü.png", "a//b.png", "./a.png", "..",
                     "a" * 300]),
    st.text(st.sampled_from(list("ab./\\:é")), min_size=1, max_size=12))


@st.composite
def zip_files(draw) -> bytes:
    import stat

    buf = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]))
    with zipfile.ZipFile(buf, "w", method) as archive:
        for name in draw(st.lists(ZIP_NAMES, max_size=6)):
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            if draw(st.booleans()):
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            size = draw(st.sampled_from([0, 10, 5000, 300_000]))
            archive.writestr(info, b"\0" * size if draw(st.booleans()) else os.urandom(min(size, 5000)))
    return buf.getvalue()


def _zip_seeds() -> list[bytes]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/a/1.png", _image_seeds_cached()[0])
        archive.writestr("data/b/2.txt", b"hello " * 50)
    return [buf.getvalue()]


def _npz_seeds() -> list[bytes]:
    buf = io.BytesIO()
    np.savez(buf, train_images=np.zeros((3, 4, 4), np.uint8), train_labels=np.array([[0], [1], [1]]),
             val_images=np.zeros((2, 4, 4), np.uint8), val_labels=np.array([0, 1]))
    return [buf.getvalue()]


def _solution_configs():
    _solution_cached()
    seed = _cache["solution_config"]
    value = json.loads(seed)

    @st.composite
    def edited(draw) -> bytes:
        cfg = json.loads(json.dumps(value))
        for _ in range(draw(st.integers(1, 3))):
            part = cfg
            path = draw(st.sampled_from([("model", "spec"), ("model", "num_classes"), ("model", "task"),
                                         ("weights", "file"), ("labels",), ("preprocess", "input_size"),
                                         ("preprocess", "modality"), ("guard",), ("model",), ("weights", "base"),
                                         ("preprocess", "mean"), ("model", "in_chans")]))
            for key in path[:-1]:
                part = part.setdefault(key, {}) if isinstance(part, dict) else {}
            if isinstance(part, dict):
                part[path[-1]] = draw(json_values() | st.sampled_from(
                    ["../../etc/passwd", "model.pt", "embedded:nope", "small:cnn?width=-1", "hf:/", -1, 10**9]))
        return json.dumps(cfg).encode()

    return st.one_of(edited(), mutated([seed]))


@dataclass
class Loader:
    name: str
    what: str
    target: Callable[[object], None]
    strategy: Callable[[], st.SearchStrategy]


LOADERS = [
    Loader("image_bytes", "read_image + folder skip-and-report (PNG, JPEG, GIF, BMP, WebP, TIFF, PPM)", image_bytes,
           lambda: st.one_of(mutated(_image_seeds_cached()), st.binary(max_size=600))),
    Loader("image_array", "read_image on arrays (any dtype/shape, NaN, inf)", image_array,
           lambda: hnp.arrays(st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_]),
                              hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6))),
    Loader("csv", "from_text_csv / load_data on CSV, TSV, any encoding", csv_bytes,
           lambda: st.one_of(csv_files(), st.binary(max_size=300))),
    Loader("json", "from_text_csv on .json / .jsonl", json_bytes, lambda: st.one_of(json_files(), st.binary(max_size=200))),
    Loader("text_lines", "sentence@label lines (PhraseBank format), load_items", text_lines,
           lambda: st.one_of(phrasebank_files(), st.binary(max_size=300))),
    Loader("npz", "from_npz (MedMNIST layout), pickled object arrays", npz_bytes,
           lambda: st.one_of(npz_files(), mutated(_npz_seeds()))),
    Loader("zip", "safe_extract_zip on uploads", zip_bytes,
           lambda: st.one_of(zip_files(), mutated(_zip_seeds()), st.binary(max_size=300))),
    Loader("solution_config", "Solution.load with an edited config.json", solution_config, _solution_configs),
]


# ----------------------------------------------------------------------------- the verticals' loaders


def _expect_only_suite_errors(call, *args, **kw):
    try:
        return call(*args, **kw)
    except _suite_error():
        return None


def _dicom_seeds() -> list[bytes]:
    """pydicom's CT and MR samples, a written DX radiograph (MONOCHROME1) and one without pixel data."""
    import pydicom
    from pydicom.data import get_testdata_file

    from suite.medical.dicom import write_radiograph

    seeds = [Path(get_testdata_file(n)).read_bytes() for n in ("CT_small.dcm", "MR_small.dcm")]
    path = write_radiograph(WORK / "dx.dcm", (np.arange(64).reshape(8, 8) * 60).astype(np.uint16),
                            photometric="MONOCHROME1", bits_stored=12, window_center=1500, window_width=3000)
    seeds.append(path.read_bytes())
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(WORK / "nopixels.dcm")
    seeds.append((WORK / "nopixels.dcm").read_bytes())
    return seeds


def dicom_bytes(data: bytes) -> None:
    from suite.medical.dicom import read_dicom
    from suite.medical.xray import load_xray

    image = _expect_only_suite_errors(read_dicom, data, name="upload.dcm")
    if image is not None:
        assert np.isfinite(image.pixels).all() and image.pixels.ndim == 2
    _expect_only_suite_errors(load_xray, data, name="upload.dcm")


def _nifti_seeds() -> list[bytes]:
    import gzip

    import nibabel as nib

    seeds = []
    for array in (np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32),
                  np.arange(60, dtype=np.int16).reshape(3, 4, 5)):
        path = WORK / "seed.nii"
        nib.save(nib.Nifti1Image(array, np.diag([1.0, 2.0, 3.0, 1.0])), path)
        raw = path.read_bytes()
        seeds += [raw, gzip.compress(raw, mtime=0)]
    bad = np.ones((4, 4, 4), np.float32)
    bad[0, 0, 0], bad[1, 1, 1] = np.nan, np.inf
    nib.save(nib.Nifti1Image(bad, np.eye(4)), WORK / "nan.nii")
    return seeds + [(WORK / "nan.nii").read_bytes()]


@st.composite
def nifti_inputs(draw):
    data = draw(st.one_of(mutated(_cached("nifti", _nifti_seeds)), st.binary(max_size=400)))
    return data, draw(st.sampled_from(["scan.nii", "scan.nii.gz"]))


def nifti_bytes(value) -> None:
    from suite.medical.volumes import load_nifti

    data, name = value
    volume = _expect_only_suite_errors(load_nifti, data, name=name)
    if volume is not None:
        assert volume.array.ndim == 3 and np.isfinite(volume.array).all()


def phrasebank(data: bytes) -> None:
    from suite.finance.data import load_labelled_text, load_phrasebank

    path = _write("Sentences_50Agree.txt", data)
    for load in (load_phrasebank, load_labelled_text):
        result = _expect_only_suite_errors(load, path)
        if result is not None:
            assert len(result.items) == len(result.labels) > 0 and set(result.labels) <= {0, 1, 2}


def news_csv(data: bytes) -> None:
    from suite.finance.data import load_news

    frame = _expect_only_suite_errors(load_news, _write("news.csv", data))
    if frame is not None:
        assert len(frame) > 0 and {"text", "ticker", "date"} <= set(frame.columns)


def leaf_images(data: bytes) -> None:
    from suite.agriculture.data import load_leaves

    folder = WORK / "leaves"
    shutil.rmtree(folder, ignore_errors=True)
    for name in ("Tomato___healthy", "Tomato___Late_blight"):
        (folder / name).mkdir(parents=True)
        (folder / name / "ok.png").write_bytes(_image_seeds_cached()[0])
    (folder / "Tomato___Late_blight" / "x.jpg").write_bytes(data)
    result = _expect_only_suite_errors(load_leaves, folder)
    assert result is not None and len(result.items) >= 2  # the good leaves are never lost


def driving_images(data: bytes) -> None:
    from suite.driving.data import read_camvid_label, read_rgb

    path = _write("frame.png", data)
    for read in (read_rgb, read_camvid_label):
        _expect_only_suite_errors(read, path)


def _cached(key: str, make):
    if key not in _cache:
        _cache[key] = make()
    return _cache[key]


VERTICAL_LOADERS = [
    # (module that must import, Loader)
    ("suite.medical.dicom", Loader("dicom", "medical read_dicom + load_xray (CT, MR, DX MONOCHROME1, no pixel data)",
                                   dicom_bytes, lambda: st.one_of(mutated(_cached("dicom", _dicom_seeds)),
                                                                  st.binary(max_size=400)))),
    ("suite.medical.volumes", Loader("nifti", "medical load_nifti (.nii, .nii.gz; NaN/inf voxels)", nifti_bytes,
                                     nifti_inputs)),
    ("suite.finance.data", Loader("phrasebank", "finance load_phrasebank / load_labelled_text (sentence@label)",
                                  phrasebank, lambda: st.one_of(phrasebank_files(), st.binary(max_size=300)))),
    ("suite.finance.data", Loader("news_csv", "finance load_news (CSV of headlines)", news_csv,
                                  lambda: st.one_of(csv_files(), st.binary(max_size=300)))),
    ("suite.agriculture.data", Loader("leaves", "agriculture load_leaves (class folders, one bad photo)",
                                      leaf_images, lambda: st.one_of(mutated(_image_seeds_cached()),
                                                                     st.binary(max_size=300)))),
    ("suite.driving.data", Loader("driving_frames", "driving read_rgb / read_camvid_label", driving_images,
                                  lambda: st.one_of(mutated(_image_seeds_cached()), st.binary(max_size=300)))),
]


def vertical_loaders() -> list[Loader]:
    """The verticals' loaders whose modules are present."""
    found = []
    for module, loader in VERTICAL_LOADERS:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        found.append(loader)
    return found


# ----------------------------------------------------------------------------- running


def fuzz(loader: Loader, examples: int, record: list | None = None, seed: int | None = 0) -> int:
    """Run ``examples`` generated inputs through ``loader``; returns how many ran.

    With ``record`` (a list) failures are appended as ``(input repr, traceback)`` and the run goes on;
    without it the first failure is raised (and shrunk by hypothesis).
    """
    count = {"n": 0}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(loader.strategy())
    def run(value):
        count["n"] += 1
        if record is None:
            loader.target(value)
            return
        try:
            loader.target(value)
        except Exception:
            record.append((value, traceback.format_exc(limit=8)))

    run()
    return count["n"]


def failure_kind(tb: str) -> str:
    """``ExceptionType at file:line`` of the innermost suite frame of a traceback."""
    lines = tb.strip().splitlines()
    frames = [x.strip() for x in lines if x.strip().startswith('File "') and "/suite/" in x]
    where = ""
    if frames:
        path, line = frames[-1].split('"')[1], frames[-1].split(", line ")[1].split(",")[0]
        where = f" at {path[path.rfind('/suite/') + 1:]}:{line}"
    return lines[-1].split(":")[0] + where


def save_failures(folder: Path, name: str, failures: list) -> list[str]:
    """The first failing input of each kind, as files a developer can replay."""
    folder.mkdir(parents=True, exist_ok=True)
    saved, seen = [], set()
    for value, tb in failures:
        kind = failure_kind(tb)
        if kind in seen:
            continue
        seen.add(kind)
        path = folder / f"{name}-{len(seen)}.bin"
        path.write_bytes(value if isinstance(value, bytes) else repr(value).encode())
        path.with_suffix(".txt").write_text(tb)
        saved.append(str(path))
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1500, help="generated inputs per loader")
    parser.add_argument("--only", nargs="*", help="loader names")
    parser.add_argument("--save-failures", type=Path, help="folder for the first failing input of each kind")
    args = parser.parse_args()
    import warnings

    import torch

    warnings.simplefilter("ignore")  # zipfile warns about the duplicate names it is fed

    torch.set_num_threads(1)
    loaders = [x for x in LOADERS + vertical_loaders() if not args.only or x.name in args.only]
    rows, raw, total = [], {}, 0
    for loader in loaders:
        failures: list = []
        start = time.perf_counter()
        n = fuzz(loader, args.examples, failures, seed=None)
        seconds = time.perf_counter() - start
        total += n
        from collections import Counter

        kinds = Counter(failure_kind(tb) for _, tb in failures)
        shown = "; ".join(f"{k} ({c})" for k, c in kinds.most_common())
        rows.append(f"| {loader.name} | {loader.what} | {n} | {len(failures)} | {seconds:.0f} | {shown or '-'} |")
        raw[loader.name] = {"inputs": n, "failures": len(failures), "seconds": round(seconds, 1),
                            "kinds": dict(kinds), "examples": [(repr(v)[:300], tb) for v, tb in failures[:3]]}
        if failures and args.save_failures:
            raw[loader.name]["saved"] = save_failures(args.save_failures, loader.name, failures)
        print(f"{loader.name}: {n} inputs, {len(failures)} failures, {seconds:.0f} s", flush=True)
    markdown = "\n".join([
        "# Fuzzing the input loaders", "",
        f"{total} generated inputs in all (hypothesis, random seed); a failure is any exception other than "
        "SuiteError. 2 shared CPU cores; command: `.venv/bin/python benchmarks/fuzz_loaders.py "
        f"--examples {args.examples}`.", "",
        "| loader | what | inputs | failures | seconds | failure kinds |", "|---|---|---|---|---|---|", *rows, ""])
    _common.publish("fuzz_loaders", markdown, {"total_inputs": total, "loaders": raw})
    shutil.rmtree(WORK, ignore_errors=True)
    if any(v["failures"] for v in raw.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
