"""Unsupervised exploration: loading, safe zips, embeddings (images, volumes, text), clusters, near
duplicates, outliers, label-first list, label agreement, output files, CLI and the app page."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from suite.core import SuiteError
from suite.core import explore as ex

LITE0 = "embedded:efficientnet_lite0"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def planted_folder(photo_folder, tmp_path_factory) -> Path:
    """The 3-class photo folder plus an exact copy of cat/0.png and an odd image (a brick texture)."""
    from skimage import data

    root = tmp_path_factory.mktemp("planted") / "photos"
    shutil.copytree(photo_folder, root)
    shutil.copy(root / "cat" / "0.png", root / "cat" / "dup_of_0.png")
    Image.fromarray(data.brick()).convert("RGB").resize((64, 64)).save(root / "rocket" / "odd.png")
    return root


@pytest.fixture(scope="module")
def explored(planted_folder, tmp_path_factory):
    """``(exploration, written files)`` of the planted folder with the embedded EfficientNet-Lite0,
    compared with random vectors."""
    data = ex.load_items(planted_folder)
    noise = ex.Embeddings(np.random.default_rng(0).normal(size=(len(data), 64)).astype(np.float32), data,
                          "random vectors", 0.0, "a backbone that knows nothing")
    result = ex.explore(ex.embed(data, LITE0), compare=[noise])
    return result, result.write(tmp_path_factory.mktemp("explore"))


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _png(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buf, format="PNG")
    return buf.getvalue()


def _folder_zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for path in sorted(folder.rglob("*.png")):
            archive.write(path, "upload/" + path.relative_to(folder).as_posix())
    return buf.getvalue()


# ----------------------------------------------------------------------------- loading


def _write(tmp_path: Path, name: str, text: str, encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("name, text, label_sep, n, classes, n_labelled", [
    ("plain.txt", "profit rose\n\nshares fell\n", None, 2, [], 0),
    ("bank.txt", "profit rose@positive\nshares fell@negative\nno change@neutral\n", "@", 3,
     ["negative", "neutral", "positive"], 3),
    ("latin.txt", "caf\xe9 sales up@positive\nloss@negative\n", "@", 2, ["negative", "positive"], 2),
    ("unlabelled.csv", "text,source\nprofit rose,a\nshares fell,b\n", None, 2, [], 0),
    ("labelled.csv", "text,label\nprofit rose,pos\nshares fell,\n", None, 2, ["pos"], 1),
])
def test_load_texts(tmp_path, name, text, label_sep, n, classes, n_labelled):
    data = ex.load_items(_write(tmp_path, name, text, "latin-1" if "latin" in name else "utf-8"), label_sep=label_sep)
    assert (data.modality, len(data), data.classes) == ("text", n, classes)
    assert (data.labels >= 0).sum() == n_labelled
    if "latin" in name:
        assert data.items[0] == "caf\xe9 sales up"


@pytest.mark.parametrize("name, text, label_sep, message", [
    ("missing_sep.txt", "profit rose@positive\nshares fell\n", "@", "line 2"),
    ("empty.txt", "\n\n", None, "no text lines"),
    ("nocol.csv", "a,b\n1,2\n", None, "no text or path column"),
    ("data.parquet", "x", None, "cannot explore"),
    ("absent.txt", None, None, "no such file"),
])
def test_load_errors_name_the_file(tmp_path, name, text, label_sep, message):
    path = _write(tmp_path, name, text) if text is not None else tmp_path / name
    with pytest.raises(SuiteError, match=message) as err:
        ex.load_items(path, label_sep=label_sep)
    assert name in str(err.value)


def test_load_image_folders(tmp_path, photo_folder):
    labelled = ex.load_items(photo_folder)
    assert labelled.classes == ["cat", "coffee", "rocket"] and (labelled.labels >= 0).all()
    flat = tmp_path / "wrapper" / "flat"
    flat.mkdir(parents=True)
    for i in range(3):
        (flat / f"{i}.png").write_bytes(_png((i * 80, 0, 0)))
    (flat / "broken.png").write_bytes(b"not a png")
    data = ex.load_items(tmp_path / "wrapper")  # a folder holding one folder is descended into
    assert (len(data), data.classes, data.modality) == (3, [], "image")
    assert (data.labels == -1).all() and "skipped 1" in data.warnings[0]
    assert ex.item_names(data) == ["0.png", "1.png", "2.png"]
    (tmp_path / "nothing").mkdir()
    with pytest.raises(SuiteError, match="expected images"):
        ex.load_items(tmp_path / "nothing")


def test_load_image_list_csv(tmp_path):
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(_png())
    data = ex.load_items(_write(tmp_path, "list.csv", "path,label\na.png,red\nb.png,\ngone.png,red\n"))
    assert (len(data), data.modality, data.classes, data.labels.tolist()) == (2, "image", ["red"], [0, -1])
    assert "skipped 1" in data.warnings[0] and "gone.png" in data.warnings[0]


def test_load_npz_all_splits_and_volumes(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "vol.npz"
    np.savez(path, train_images=rng.integers(0, 255, (4, 6, 12, 12), dtype=np.uint8),
             train_labels=np.array([[0], [1], [0], [1]]), test_images=rng.integers(0, 255, (2, 6, 12, 12), dtype=np.uint8),
             test_labels=np.array([[1], [0]]))
    data = ex.load_items(path)
    assert (len(data), data.modality) == (6, "volume")
    assert len(ex.load_items(path, split=["test"])) == 2
    slices = ex.volume_slices(data, 4)
    assert (len(slices), slices.modality) == (24, "image")
    assert np.array_equal(slices.items[3], data.items[0][5]) and slices.labels[4] == data.labels[1]


# ----------------------------------------------------------------------------- zips


def test_safe_extract_zip_descends_into_the_zipped_folder(tmp_path):
    root = ex.safe_extract_zip(_zip({"leaves/a/1.png": _png(), "leaves/b/2.png": _png(), "__MACOSX/._x": b"",
                                     "leaves/.DS_Store": b""}), tmp_path)
    assert root == (tmp_path / "leaves").resolve()
    assert sorted(p.name for p in root.rglob("*")) == ["1.png", "2.png", "a", "b"]


@pytest.mark.parametrize("entries, symlink, limits, message", [
    ({"../evil.png": b"x"}, None, {}, "unsafe path"),
    ({"ok/../../evil.png": b"x"}, None, {}, "unsafe path"),
    ({"/etc/evil.png": b"x"}, None, {}, "unsafe path"),
    ({"C:/evil.png": b"x"}, None, {}, "unsafe path"),
    ({"ok.png": b"x"}, "link.png", {}, "symbolic link"),
    ({f"{i}.png": b"x" for i in range(5)}, None, {"max_files": 3}, "more than 3 files"),
    ({"big.bin": b"\0" * 5000}, None, {"max_bytes": 1000}, "expands to more than"),
    ({}, None, {}, "holds no files"),
])
def test_unsafe_or_oversized_zips_are_refused(tmp_path, entries, symlink, limits, message):
    with pytest.raises(SuiteError, match=message):
        ex.safe_extract_zip(_zip(entries, symlink), tmp_path / "out", **limits)
    assert not (tmp_path / "evil.png").exists()


def test_not_a_zip_is_a_clear_error(tmp_path):
    with pytest.raises(SuiteError, match="not a readable zip"):
        ex.safe_extract_zip(b"plain text", tmp_path)


# ----------------------------------------------------------------------------- analysis on synthetic points


def _blobs(n_per: int = 30, k: int = 4, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 5
    points = np.concatenate([c + rng.normal(size=(n_per, dim)) * 0.5 for c in centres])
    return points / np.linalg.norm(points, axis=1, keepdims=True), np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("k", [2, 4, 6])
def test_choose_k_finds_well_separated_blobs(k):
    points, _ = _blobs(k=k)
    assert ex.choose_k(points, (2, 10))[0] == k


@pytest.mark.parametrize("n, k_range", [(2, (2, 10)), (10, (12, 15))])
def test_choose_k_refuses_impossible_ranges(n, k_range):
    with pytest.raises(SuiteError, match="choosing k"):
        ex.choose_k(np.eye(n), k_range)


@pytest.mark.parametrize("sizes, budget, expected", [
    ({0: 10, 1: 5, 2: 1}, 3, {0: 1, 1: 1, 2: 1}),
    ({0: 10, 1: 5, 2: 1}, 2, {0: 1, 1: 1, 2: 0}),
    ({0: 10, 1: 5, 2: 1}, 9, {0: 5, 1: 3, 2: 1}),
    ({0: 2, 1: 2}, 10, {0: 2, 1: 2}),
])
def test_allocate_covers_clusters_then_follows_size(sizes, budget, expected):
    assert ex._allocate(sizes, budget) == expected


def test_label_first_is_diverse_representative_and_skips():
    points, truth = _blobs(k=4)
    picks = ex.label_first(points, truth, budget=8, skip={0, 1, 2})
    assert {p["cluster"] for p in picks[:4]} == {0, 1, 2, 3}  # the first round covers every cluster
    assert len({p["index"] for p in picks}) == 8 and not {0, 1, 2} & {p["index"] for p in picks}
    centre = points[truth == 0].mean(axis=0)
    first_of_0 = next(p["index"] for p in picks if p["cluster"] == 0)
    typical = (points[truth == 0] @ centre)
    assert points[first_of_0] @ centre >= np.percentile(typical, 75)  # representative, not an edge case


def test_outlier_scores_rank_an_isolated_point_first():
    points, _ = _blobs(k=3)
    odd = np.ones((1, points.shape[1])) / np.sqrt(points.shape[1])
    scores, fence = ex.outlier_scores(np.concatenate([points, odd]))
    assert np.argmax(scores) == len(points) and scores[-1] > fence


def test_knn_and_agreement_edge_cases():
    points, truth = _blobs(k=3)
    knn = ex.knn_accuracy(points, truth)
    assert knn["accuracy"] == 1.0 and knn["folds"] == 5 and knn["ci95"][0] > 0.9
    assert ex.knn_accuracy(points[:31], np.r_[truth[:29], 1, 1])["folds"] == 2  # folds shrink to the rarest class
    assert ex.knn_accuracy(points[:4], np.array([0, 0, 0, 1])) is None  # a class with one item
    unlabelled = ex.unlabelled(list(range(len(points))), "text", "t")
    assert ex.label_agreement(points, unlabelled, truth)["available"] is False


@pytest.mark.parametrize("n, method, expected", [(8, "auto", "PCA"), (40, "pca", "PCA")])  # t-SNE: end to end
def test_map_methods(n, method, expected):
    coords, used = ex.map_2d(_blobs(n_per=n // 4 or 1, k=4)[0][:n], method)
    assert coords.shape == (n, 2) and used.startswith(expected)


def test_map_method_errors():
    with pytest.raises(SuiteError, match="unknown map method"):
        ex.map_2d(np.eye(12), "mds")
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(SuiteError, match="umap-learn"):
            ex.map_2d(np.eye(12), "umap")


# ----------------------------------------------------------------------------- the photo folder, end to end


def test_photo_folder_clusters_match_the_classes(explored):
    result, _ = explored
    assert result.k == 3
    assert result.agreement["ari"] > 0.9 and result.agreement["ari_k_classes"] > 0.9
    assert result.agreement["knn"]["accuracy"] >= 0.95


def test_planted_duplicate_and_odd_image_are_found(explored):
    result, _ = explored
    names = result.embeddings.names
    groups = [sorted(names[i] for i in g["members"]) for g in result.duplicates]
    planted = next(g for g in result.duplicates if "cat/dup_of_0.png" in [names[i] for i in g["members"]])
    assert ["cat/0.png", "cat/dup_of_0.png"] in groups and "pixels" in planted["found_by"]
    assert names[result.outliers[0]] == "rocket/odd.png"


def test_label_first_covers_every_cluster_and_avoids_planted_items(explored):
    result, _ = explored
    picked = [p["index"] for p in result.picks]
    names = [result.embeddings.names[i] for i in picked]
    assert {p["cluster"] for p in result.picks[:result.k]} == set(range(result.k))
    assert len(picked) == 20 == len(set(picked))
    assert "rocket/odd.png" not in names and not {"cat/0.png", "cat/dup_of_0.png"} <= set(names)


def test_output_folder(explored):
    result, files = explored
    names = result.embeddings.names
    assert {p.name for p in files.values()} == {"embeddings.safetensors", "items.csv", "label_first.csv", "map.html",
                                                "map.png", "report.json", "report.md"}
    from safetensors.numpy import load_file

    assert load_file(files["embeddings"])["embeddings"].shape == (38, 1280)
    rows = list(csv.DictReader(open(files["items"], encoding="utf-8")))
    assert [r["item"] for r in rows] == names and rows[names.index("rocket/odd.png")]["outlier"] == "1"
    first = list(csv.DictReader(open(files["label_first"], encoding="utf-8")))
    assert [int(r["rank"]) for r in first] == list(range(1, 21)) and all(r["reason"] for r in first)
    report = json.loads(files["report_json"].read_text())
    assert report["clusters"]["k"] == 3
    lite0, noise = report["backbones"]
    assert lite0["backbone"] == LITE0 and noise["backbone"] == "random vectors"
    assert lite0["knn_accuracy"] > 0.9 > 0.6 > noise["knn_accuracy"] and noise["ari"] < 0.2
    assert "silhouette" in report["methods"]["kmeans"] and "t-SNE" in report["map"]
    assert "ARI (k chosen)" in files["report_md"].read_text()
    with Image.open(files["map_png"]) as png:
        assert png.width >= 1200


def test_map_html_is_self_contained_and_lists_every_item(explored):
    result, files = explored
    page = files["map_html"].read_text(encoding="utf-8")
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    payload = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert payload["names"] == result.embeddings.names and len(payload["thumbs"]) == 38
    assert page.count("<circle") == 38 and all(f"<title>{name} |" in page for name in result.embeddings.names)


def test_html_escapes_hostile_text_names(tmp_path):
    texts = ["</script><script>alert(1)</script>", "a & b <i>", "plain one", "plain two"]
    data = ex.unlabelled(texts, "text", "hostile")
    emb = ex.Embeddings(_blobs(n_per=1, k=4)[0], data, "test", 0.0, "test")
    from suite.core.explore_views import map_html

    page = map_html(ex.explore(emb, k=2))
    assert "<script>alert" not in page and "&lt;i&gt;" in page
    payload = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert payload["names"] == texts


# ----------------------------------------------------------------------------- embeddings: cache, volumes, text


def test_embed_cache_is_the_engines_feature_cache(tmp_path, photo_folder, monkeypatch):
    from suite.core import create_model
    from suite.core.features import clear_memory_cache, extract_features

    data = ex.load_items(photo_folder).subset([0, 1, 12, 13, 24, 25])
    emb = ex.embed(data, LITE0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("features-*/*.safetensors"))) == 1
    clear_memory_cache()
    engine_model = create_model(LITE0, num_classes=3, in_chans=3)  # as finetune builds it for RGB images
    monkeypatch.setattr(engine_model, "forward_features", lambda x: pytest.fail("features were recomputed"))
    assert np.allclose(extract_features(engine_model, data, cache_dir=tmp_path).numpy(), emb.vectors)


def test_volumes_are_mean_pooled_slice_embeddings(tmp_path):
    import dataclasses

    from suite.core import create_model
    from suite.core.features import extract_features

    rng = np.random.default_rng(0)
    path = tmp_path / "vol3d.npz"
    np.savez(path, test_images=rng.integers(0, 255, (3, 10, 32, 32), dtype=np.uint8), test_labels=np.array([0, 1, 0]))
    data = ex.load_items(path)
    model = create_model(LITE0, num_classes=0, in_chans=1)
    model.preprocess = dataclasses.replace(model.preprocess, input_size=(1, 64, 64))
    emb = ex.embed(data, model, slices=4)
    per_slice = extract_features(model, ex.volume_slices(data, 4)).numpy().reshape(3, 4, -1)
    assert emb.vectors.shape == (3, 1280) and np.allclose(emb.vectors, per_slice.mean(axis=1), atol=1e-5)
    assert "4 evenly spaced axial slices" in emb.how and ex.data_in_chans(data) == 1


def test_text_embeddings_separate_topics_and_find_repeated_sentences():
    finance = ["Quarterly revenue rose 12 percent on strong demand.", "The bank cut its interest rate forecast.",
               "Operating profit fell short of analyst estimates.", "Shares dropped after the earnings warning.",
               "The company raised its dividend for the year.", "Net sales increased to EUR 40 million."]
    cooking = ["Chop the onions and fry them in butter.", "Bake the bread at 200 degrees for forty minutes.",
               "Whisk the eggs with sugar until fluffy.", "Simmer the tomato sauce for an hour.",
               "Season the soup with salt and pepper.", "Knead the dough and let it rise overnight."]
    texts = finance + cooking + ["the bank cut its  interest rate forecast."]
    data = ex.with_label_names(texts, ["finance"] * 6 + ["cooking"] * 6 + ["finance"], "text", "topics")
    result = ex.explore(ex.embed(data, "embedded:minilm_l6"), map_method="pca")
    assert result.agreement["ari_k_classes"] == 1.0 and result.agreement["knn"]["accuracy"] >= 0.9
    assert any({1, 12} <= set(g["members"]) and "text" in g["found_by"] for g in result.duplicates)


def test_embed_refuses_a_backbone_of_the_wrong_modality():
    data = ex.unlabelled(["some text", "more text", "third"], "text", "notes.txt")
    with pytest.raises(SuiteError, match="takes image input.*embedded:minilm_l6"):
        ex.embed(data, LITE0)


# ----------------------------------------------------------------------------- CLI


def test_cli_embed_and_explore(tmp_path, planted_folder, capsys):
    from suite.cli import main

    cache = str(tmp_path / "cache")
    assert main(["embed", "--data", str(planted_folder), "--out", str(tmp_path / "emb"), "--cache-dir", cache]) == 0
    assert {p.name for p in (tmp_path / "emb").iterdir()} == {"embeddings.safetensors", "items.csv"}
    archive = tmp_path / "photos.zip"
    archive.write_bytes(_folder_zip(planted_folder))
    out = tmp_path / "explore"
    assert main(["explore", "--data", str(archive), "--out", str(out), "--cache-dir", cache, "--k", "3",
                 "--label-first", "6", "--map", "pca"]) == 0
    printed = capsys.readouterr().out
    assert "k = 3 (given)" in printed and "ARI" in printed
    assert len(list(csv.DictReader(open(out / "label_first.csv")))) == 6
    assert json.loads((out / "report.json").read_text())["data"]["n"] == 38


@pytest.mark.parametrize("argv, message", [
    (["explore", "--data", "/no/such/folder"], "no such file"),
    (["embed", "--data", "{txt}", "--backbone", LITE0], "takes image input"),
    (["explore", "--data", "{txt}", "--label-sep", "@"], "label separator"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    from suite.cli import main

    txt = _write(tmp_path, "notes.txt", "first note\nsecond note\nthird note\n")
    argv = [a.replace("{txt}", str(txt)) for a in argv] + ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# ----------------------------------------------------------------------------- the app page


def _explore_page():
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "apps" / "Home.py"), default_timeout=180).run()
    return at.switch_page("views/explore.py").run()


def test_explore_page_explores_an_uploaded_zip(photo_folder):
    at = _explore_page()
    assert not at.exception and "Explore" in at.title[0].value
    at.file_uploader(key="explore_zip").upload("photos.zip", _folder_zip(photo_folder), "application/zip").run()
    assert not at.exception and not at.error
    assert [m.value for m in at.metric][:2] == ["36", "3"]
    first = next(df.value for df in at.dataframe if "reason" in df.value.columns)
    assert len(first) == 20 and set(first["cluster"]) == {0, 1, 2}


def test_explore_page_refuses_a_malicious_zip_and_keeps_working(photo_folder):
    at = _explore_page()
    evil = _zip({"photos/cat/1.png": _png(), "../../outside.png": _png()})
    at.file_uploader(key="explore_zip").upload("evil.zip", evil, "application/zip").run()
    assert not at.exception
    assert any("unsafe path" in e.value and "../../outside.png" in e.value for e in at.error)
    at.file_uploader(key="explore_zip").upload("photos.zip", _folder_zip(photo_folder), "application/zip").run()
    assert not at.exception and not at.error and at.metric[0].value == "36"


def test_explore_page_reads_a_server_folder_and_reports_a_missing_one(tmp_path, photo_folder):
    at = _explore_page()
    at.radio(key="explore_kind").set_value("Folder or file on this server").run()
    at.text_input(key="explore_path").input(str(tmp_path / "absent")).run()
    assert not at.exception and any("no such file or folder" in e.value for e in at.error)
    at.text_input(key="explore_path").input(str(photo_folder)).run()
    assert not at.exception and not at.error and at.metric[0].value == "36"
