"""The Explore view (a page, or a tab in a vertical's page): what is in an uploaded zip or a folder
on the server, and what to label first. The work happens in ``suite.core.explore``."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

MAX_ZIP_UPLOAD = 200 * 1024 * 1024
MAX_ZIP_EXPANDED = 1024**3
MAX_ZIP_FILES = 10_000


@st.cache_resource(show_spinner="Loading backbone...")
def feature_extractor(spec: str, in_chans: int | None):
    """A backbone without head, loaded once per process and input-channel count."""
    from suite.core import create_model

    return create_model(spec, num_classes=0, in_chans=in_chans)


def _workdir(key: str) -> Path:
    """A fresh temporary folder for this view; the previous one is removed."""
    old = st.session_state.get(f"{key}_workdir")
    if old:
        shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix="suite-explore-"))
    st.session_state[f"{key}_workdir"] = str(path)
    return path


def _options(key: str, default_backbone: str | None) -> dict:
    with st.expander("Options"):
        left, right = st.columns(2)
        backbone = left.text_input("Backbone spec (empty: the embedded one for the data)", default_backbone or "",
                                   key=f"{key}_backbone")
        label_sep = left.text_input("Label separator at the end of .txt lines (e.g. @)", "", key=f"{key}_sep")
        max_items = left.number_input("Use at most this many items (0: all)", 0, 100_000, 2000, key=f"{key}_max")
        clusters = right.selectbox("Clusters", ["kmeans", "density"], key=f"{key}_clusters",
                                   help="k-means with k chosen by silhouette, or HDBSCAN (density, with noise)")
        k = right.number_input("k (0: choose by silhouette)", 0, 100, 0, key=f"{key}_k")
        budget = right.number_input("Label-first list length", 1, 1000, 20, key=f"{key}_budget")
    return {"backbone": backbone.strip() or None, "label_sep": label_sep or None, "max_items": int(max_items),
            "clusters": clusters, "k": int(k) or None, "budget": int(budget)}


def _source(key: str):
    """``(signature, locate)``: what the user chose, and ``locate(workdir)`` -> its folder or file."""
    from suite.core.explore import safe_extract_zip

    kind = st.radio("Data", ["Upload a zip", "Folder or file on this server"], horizontal=True, key=f"{key}_kind")
    if kind == "Upload a zip":
        upload = st.file_uploader("A zip of a folder: images (flat or one sub-folder per class), or one .txt, "
                                  ".csv or .npz file", type=["zip"], key=f"{key}_zip")
        if upload is None:
            return None, None
        raw = upload.getvalue()
        if len(raw) > MAX_ZIP_UPLOAD:
            st.error(f"{upload.name}: {len(raw) / 2**20:.0f} MB is more than the {MAX_ZIP_UPLOAD // 2**20} MB limit.")
            return None, None
        return (upload.name + hashlib.sha256(raw).hexdigest(),
                lambda work: safe_extract_zip(raw, work / "data", MAX_ZIP_FILES, MAX_ZIP_EXPANDED))
    path = st.text_input("Path on the server (folder, .txt, .csv or .npz)", key=f"{key}_path").strip()
    return (path, lambda work: Path(path).expanduser()) if path else (None, None)


def _run(key: str, locate, options: dict):
    from suite.core.explore import data_in_chans, default_backbone, embed, explore, load_items, subsample

    work = _workdir(key)
    data = subsample(load_items(locate(work), label_sep=options["label_sep"]), options["max_items"])
    model = feature_extractor(options["backbone"] or default_backbone(data), data_in_chans(data))
    result = explore(embed(data, model), k=options["k"], clusters=options["clusters"], budget=options["budget"])
    return result, result.write(work / "explore")


def explore_view(key: str = "explore", default_backbone: str | None = None) -> None:
    """Data choice, options, then the map, clusters, near duplicates, outliers and the label-first list."""
    from suite.core import SuiteError

    signature, locate = _source(key)
    options = _options(key, default_backbone)
    if locate is None:
        return
    wanted = (signature, tuple(sorted(options.items())))
    if st.session_state.get(f"{key}_wanted") != wanted:
        st.session_state.pop(f"{key}_result", None)
        try:
            with st.spinner("Embedding and exploring..."):
                st.session_state[f"{key}_result"] = _run(key, locate, options)
        except SuiteError as exc:
            st.error(str(exc))
            return
        st.session_state[f"{key}_wanted"] = wanted
    _show(*st.session_state[f"{key}_result"], key=key)


def _show(result, files: dict, key: str) -> None:
    import json

    report = json.loads(Path(files["report_json"]).read_text())
    names = result.embeddings.names
    cols = st.columns(4)
    cols[0].metric("Items", report["data"]["n"])
    cols[1].metric("Clusters", len(report["clusters"]["sizes"]))
    cols[2].metric("Near-duplicate groups", report["near_duplicates"]["n_groups"])
    cols[3].metric("Outliers", report["outliers"]["n"])
    st.caption(f"{report['methods']['embedding']}. {report['methods']['kmeans']}. Map: {report['map']}.")
    for warning in report["data"]["warnings"][:5]:
        st.warning(warning)
    tabs = st.tabs(["Map", "Clusters", "Near duplicates", "Outliers", "Label first", "Agreement with labels"])
    with tabs[0]:
        st.iframe(Path(files["map_html"]), height=880)  # names are escaped in it; thumbnails are our own JPEGs
        st.image(str(files["map_png"]), caption="Map and the most typical items of each cluster")
    with tabs[1]:
        sizes = report["clusters"]["sizes"]
        st.dataframe(pd.DataFrame({"cluster": list(sizes), "items": list(sizes.values()),
                                   "most typical": ["; ".join(report["clusters"]["central_items"][c]) for c in sizes]}),
                     hide_index=True)
    with tabs[2]:
        groups = report["near_duplicates"]["groups"]
        st.caption(report["methods"]["near_duplicates"])
        st.dataframe(pd.DataFrame([{"group": n, "items": len(g["items"]), "min cosine": g["min_cosine"],
                                    "found by": ", ".join(g["found_by"]), "members": "; ".join(g["items"])}
                                   for n, g in enumerate(groups)]), hide_index=True)
    with tabs[3]:
        st.caption(report["methods"]["outliers"])
        st.dataframe(pd.DataFrame(report["outliers"]["top"]), hide_index=True)
        _thumbnails(result, [t["index"] for t in report["outliers"]["top"][:8]], names)
    with tabs[4]:
        st.caption(report["methods"]["label_first"])
        st.dataframe(pd.DataFrame(report["label_first"]), hide_index=True)
        st.download_button("Download label_first.csv", Path(files["label_first"]).read_bytes(), "label_first.csv",
                           "text/csv", key=f"{key}_download")
        _thumbnails(result, [r["index"] for r in report["label_first"][:12]], names)
    with tabs[5]:
        agreement = report["agreement"]
        if agreement.get("available"):
            st.caption(report["methods"]["agreement"])
            st.dataframe(pd.DataFrame(report["backbones"]), hide_index=True)
        else:
            st.info(f"No label agreement: {agreement['why']}.")
    st.download_button("Download report.md", Path(files["report_md"]).read_bytes(), "report.md", "text/markdown",
                       key=f"{key}_report")


def _thumbnails(result, indices: list[int], names: list[str]) -> None:
    from suite.core.explore_views import thumbnail

    data = result.embeddings.data
    if not indices or data.modality == "text":
        return
    st.image([thumbnail(data, i, 128) for i in indices], caption=[names[i] for i in indices], width=128)
