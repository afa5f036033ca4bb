"""The Adapt tab every vertical shares: bring data, get advice, train with live progress, download.

Pages call ``adapt_view(key, ...)`` with their vertical's defaults, and ``solution_choice(key, ...)``
on their Try tab so a solution trained here (or uploaded as a zip) can be tried at once. All
training goes through ``suite.core.finetune``; this module only draws it.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import streamlit as st

MAX_ZIP_UPLOAD = 200 * 1024 * 1024
EMBEDDED = {"image": "embedded:efficientnet_lite0", "text": "embedded:minilm_l6"}
STRATEGY_HELP = {
    "feature_extraction": "frozen backbone, train the head on cached features (fastest; small data)",
    "partial": "unfreeze the last blocks and the head",
    "full": "train every layer (more data, or data far from the backbone's source)",
    "discriminative": "every layer, smaller learning rates near the input",
    "gradual_unfreezing": "unfreeze one block per epoch from the top",
    "lp_ft": "linear probe first, then fine-tune everything",
    "lora": "low-rank adapters (text models)",
    "finbert": "discriminative rates + gradual unfreezing + warm-up (the FinBERT recipe)",
}


def _workdir(key: str) -> Path:
    """A per-session scratch folder for uploads and runs."""
    state = f"{key}_workdir"
    if state not in st.session_state:
        st.session_state[state] = tempfile.mkdtemp(prefix=f"suite-{key}-")
    return Path(st.session_state[state])


def _strategies() -> list[str]:
    from suite.core.strategies import list_strategies

    return [s for s in list_strategies() if s != "strategy"]


def load_uploaded_data(upload, modality: str, workdir: Path):
    """An uploaded zip (folder per class, or a CSV with its files) or CSV -> LabeledData; raises SuiteError."""
    from suite.core import SuiteError
    from suite.core.archive import safe_extract_zip
    from suite.core.data import load_data

    raw = upload.getvalue()
    if len(raw) > MAX_ZIP_UPLOAD:
        raise SuiteError(f"{upload.name}: {len(raw) / 1e6:.0f} MB is more than the "
                         f"{MAX_ZIP_UPLOAD // 2**20} MB upload limit")
    name = upload.name.lower()
    if name.endswith(".zip"):
        dest = Path(tempfile.mkdtemp(dir=workdir, prefix="data-"))
        root = safe_extract_zip(raw, dest)
        tables = sorted(p for p in root.iterdir() if p.suffix.lower() in (".csv", ".tsv", ".json", ".jsonl"))
        return load_data(tables[0] if len(tables) == 1 and modality == "text" else root)
    if name.endswith((".csv", ".tsv", ".json", ".jsonl")):
        if modality != "text":
            raise SuiteError(f"{upload.name}: a CSV of image paths cannot travel without its images; "
                             "upload a zip holding the CSV and the images, or give a server-side path")
        path = workdir / Path(upload.name).name
        path.write_bytes(raw)
        return load_data(path)
    raise SuiteError(f"{upload.name}: expected a .zip (folder per class) or a .csv/.json of labelled text")


def _data_source(key: str, modality: str, example: str | None):
    """Widgets choosing the data; returns LabeledData or None."""
    from suite.core import SuiteError
    from suite.core.data import load_data

    kinds = ["Upload a zip or CSV", "Server-side path"]
    kind = st.radio("Your data", kinds, horizontal=True, key=f"{key}_source")
    try:
        if kind == kinds[0]:
            types = ["zip", "csv", "tsv", "json", "jsonl"] if modality == "text" else ["zip"]
            hint = ("a zip of one folder per class (`healthy/`, `sick/`, ...)" if modality == "image"
                    else "a CSV with `text` and `label` columns (or a zip holding one)")
            upload = st.file_uploader(f"Upload {hint}", type=types, key=f"{key}_data_upload")
            if upload is None:
                return None
            cache = st.session_state.get(f"{key}_data_cache")
            if cache and cache[0] == (upload.name, upload.size):
                return cache[1]
            data = load_uploaded_data(upload, modality, _workdir(key))
            st.session_state[f"{key}_data_cache"] = ((upload.name, upload.size), data)
            return data
        path = st.text_input("Folder or file on the server", value=example or "", key=f"{key}_data_path")
        return load_data(path) if path else None
    except SuiteError as exc:
        st.error(str(exc))
        return None


def _summary(data) -> None:
    st.write(f"**{len(data)} items**, {len(data.classes)} classes, task `{data.task}`")
    st.bar_chart(pd.Series(data.class_counts(), name="items per class"))


def _advice(key: str, data, modality: str) -> None:
    try:
        from suite.core.advisor import advise
    except ImportError:
        return
    if st.button("Advise me: which backbone and strategy?", key=f"{key}_advise"):
        with st.spinner("Measuring the data set against the backbones..."):
            try:
                advice = advise(data)
            except Exception as exc:  # the advice is optional; training still works
                st.warning(f"No advice this time: {exc}")
                return
        st.session_state[f"{key}_advice"] = advice
    advice = st.session_state.get(f"{key}_advice")
    if advice is not None:
        with st.expander("Advice", expanded=True):
            st.markdown(advice.to_markdown())


def _progress_callback(bar, chart, status):
    def callback(event, state):
        if event == "batch_end" and state.total_steps:
            bar.progress(min(state.step / state.total_steps, 1.0),
                         text=f"epoch {state.epoch + 1}, step {state.step}/{state.total_steps}")
        elif event == "epoch_end" and state.history:
            frame = pd.DataFrame(state.history).set_index("epoch")
            cols = [c for c in ("train_loss", "val_loss", "val_accuracy") if c in frame]
            chart.line_chart(frame[cols])
            last = state.history[-1]
            status.write(" · ".join(f"{k} {v:.3f}" for k, v in last.items()
                                    if k in ("train_loss", "val_loss", "val_accuracy") and v == v))
    return callback


def zip_directory(folder: Path) -> bytes:
    """A folder as zip bytes (for the download button)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder))
    return buf.getvalue()


def _show_result(key: str, result, run_dir: Path) -> None:
    report = result.report
    if report.get("metrics"):
        ci = report.get("ci95", {})
        rows = [{"metric": k, "value": v, "95% CI": (f"[{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if k in ci else "")}
                for k, v in report["metrics"].items() if isinstance(v, (int, float))]
        st.caption(report.get("data", ""))
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    for w in report.get("warnings", []):
        st.warning(w)
    plots = sorted((run_dir / "report").glob("*.png"))
    if plots:
        cols = st.columns(min(len(plots), 3))
        for i, p in enumerate(plots):
            cols[i % len(cols)].image(str(p), caption=p.stem.replace("_", " "))
    md = run_dir / "report" / "report.md"
    if md.is_file():
        with st.expander("Full report"):
            st.markdown(md.read_text())
    st.download_button("Download the solution (.zip)", zip_directory(run_dir / "solution"),
                       file_name=f"{result.solution.name}.zip", mime="application/zip", key=f"{key}_download")


def adapt_view(key: str, modality: str = "image", backbone: str | None = None,
               strategy: str = "feature_extraction", epochs: int = 5, lr: float = 1e-3,
               image_size: int | None = 128, example: str | None = None, task_note: str = "",
               augment: str | None = None) -> None:
    """Bring data -> (advice) -> choose backbone and strategy -> train live -> report -> download.

    The keyword arguments are the vertical's defaults (``augment`` names an augmentation preset).
    """
    from suite.core import SuiteError
    from suite.core.finetune import finetune
    from suite.core.trainer import TrainConfig

    st.subheader("Adapt to your data")
    if task_note:
        st.caption(task_note)
    data = _data_source(key, modality, example)
    if data is None:
        return
    _summary(data)
    _advice(key, data, modality)
    strategies = _strategies()
    with st.form(f"{key}_train_form"):
        left, right = st.columns(2)
        default_backbone = backbone or EMBEDDED.get(modality, EMBEDDED["image"])
        spec = left.text_input("Backbone spec", value=default_backbone, key=f"{key}_backbone",
                               help="embedded specs work offline; timm:/tv:/hf: specs need a filled cache")
        chosen = right.selectbox("Strategy", strategies, index=strategies.index(strategy) if strategy in strategies
                                 else 0, key=f"{key}_strategy",
                                 format_func=lambda s: f"{s}: {STRATEGY_HELP[s]}" if s in STRATEGY_HELP else s)
        n_epochs = left.slider("Epochs", 1, 30, epochs, key=f"{key}_epochs")
        rate = right.number_input("Learning rate", min_value=1e-6, max_value=1.0, value=lr, format="%.5f",
                                  key=f"{key}_lr")
        size = (left.select_slider("Image size (px)", [64, 96, 128, 160, 224], value=image_size or 224,
                                   key=f"{key}_size") if modality == "image" else None)
        scratch = right.checkbox("Also train from scratch (transfer vs scratch)", key=f"{key}_scratch")
        go = st.form_submit_button("Train", type="primary")
    if go:
        run_dir = Path(tempfile.mkdtemp(dir=_workdir(key), prefix="run-"))
        bar, chart, status = st.progress(0.0, text="starting..."), st.empty(), st.empty()
        config = TrainConfig(epochs=n_epochs, lr=float(rate), strategy=chosen, progress=False, augment=augment,
                             cache_dir=str(_workdir(key) / "cache"))
        try:
            with st.spinner("Training..."):
                result = finetune(data, backbone=spec, config=config, output_dir=run_dir, image_size=size,
                                  callbacks=[_progress_callback(bar, chart, status)],
                                  baseline="scratch" if scratch else None)
        except SuiteError as exc:
            st.error(str(exc))
            return
        bar.progress(1.0, text="done")
        st.session_state[f"{key}_adapted"] = (result, run_dir)
    if f"{key}_adapted" in st.session_state:
        result, run_dir = st.session_state[f"{key}_adapted"]
        st.success(f"Trained `{result.solution.name}`: select 'trained in this session' on the Try tab to use it.")
        _show_result(key, result, run_dir)


def solution_choice(key: str, ready_made: dict, label: str = "Model"):
    """Radio on a Try tab: a ready-made solution, the one trained on the Adapt tab, or an uploaded zip.

    ``ready_made`` maps a display name to a zero-argument loader (use ``st.cache_resource`` loaders).
    Returns a Solution or None (after showing why).
    """
    from suite.core import Solution, SuiteError
    from suite.core.archive import safe_extract_zip

    options = list(ready_made)
    if f"{key}_adapted" in st.session_state:
        options.append("trained in this session")
    options.append("upload a solution (.zip)")
    choice = st.radio(label, options, horizontal=True, key=f"{key}_solution_choice")
    if choice in ready_made:
        return ready_made[choice]()
    if choice == "trained in this session":
        return st.session_state[f"{key}_adapted"][0].solution
    upload = st.file_uploader("A solution zip downloaded from the Adapt tab", type=["zip"],
                              key=f"{key}_solution_upload")
    if upload is None:
        return None
    cached = st.session_state.get(f"{key}_uploaded_solution")
    if cached and cached[0] == (upload.name, upload.size):
        return cached[1]
    try:
        folder = safe_extract_zip(upload.getvalue(), tempfile.mkdtemp(dir=_workdir(key), prefix="solution-"))
        solution = Solution.load(folder)  # config.json + safetensors: nothing is unpickled
    except SuiteError as exc:
        st.error(f"{upload.name}: {exc}")
        return None
    st.session_state[f"{key}_uploaded_solution"] = ((upload.name, upload.size), solution)
    return solution
