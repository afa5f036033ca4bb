"""Driving: sim-to-real street-scene segmentation, source-only vs adapted, side by side."""

import numpy as np
import pandas as pd
import streamlit as st

from apps.common import read_upload

st.title("Driving: sim-to-real segmentation")
st.caption("Both models learnt their labels only from frames of the built-in street simulator; the adapted one was "
           "also trained on unlabelled real frames (CamVid), labelled by itself. Upload a dashcam frame to see what "
           "adaptation changes. "
           "Research and demonstration use only: never for driving decisions.")


@st.cache_resource(show_spinner="Loading the driving models...")
def solutions():
    from suite.driving.segment import load_solution

    return {kind: load_solution(kind) for kind in ("source_only", "adapted")}


@st.cache_resource(show_spinner=False)
def simulator():
    from suite.driving.sim import DrivingSimulator

    return DrivingSimulator(360, 480, seed=2024)


def legend_html() -> str:
    from suite.driving.segment import legend

    chips = [f"<span style='display:inline-block;margin:0 10px 4px 0'><span style='display:inline-block;width:12px;"
             f"height:12px;background:{colour};border:1px solid #888;margin-right:4px'></span>{name}</span>"
             for name, colour in legend()]
    return "".join(chips)


def try_tab():
    from suite.core import SuiteError
    from suite.driving.segment import overlay

    left, right = st.columns([3, 1])
    upload = left.file_uploader("A forward-camera street frame (PNG or JPEG)", type=["png", "jpg", "jpeg", "bmp"],
                                key="driving_frame")
    seed = right.number_input("Simulator frame", min_value=0, max_value=10_000, value=0, step=1, key="driving_sim_index")
    if right.button("Simulate a frame", key="driving_simulate"):
        st.session_state["driving_simulated"] = int(seed)
    image, caption, truth = None, "", None
    if upload is not None:
        pil = read_upload(upload)
        if pil is not None:
            image, caption = np.asarray(pil.convert("RGB")), upload.name
    elif "driving_simulated" in st.session_state:
        index = st.session_state["driving_simulated"]
        image, truth = simulator().frame(index)
        caption = f"simulated frame {index} (a training-like image, not real)"
    if image is None:
        st.info("Upload a frame, or press 'Simulate a frame'.")
        return
    try:
        models = solutions()
    except SuiteError as exc:
        st.error(str(exc))
        return
    results = {kind: sol.predict(image) for kind, sol in models.items()}
    cols = st.columns(3)
    cols[0].image(image, caption=caption, width="stretch")
    for col, (kind, title) in zip(cols[1:], [("source_only", "source-only (simulator)"), ("adapted", "adapted (sim-to-real)")]):
        miou = models[kind].metrics.get("miou")
        col.image(overlay(image, results[kind]["mask"]), width="stretch",
                  caption=f"{title}; CamVid val mIoU {100 * miou:.1f}" if miou is not None else title)
    st.markdown(legend_html(), unsafe_allow_html=True)
    shares = pd.DataFrame({"class": list(results["adapted"]["shares"]),
                           "source-only %": [100 * v for v in results["source_only"]["shares"].values()],
                           "adapted %": [100 * v for v in results["adapted"]["shares"].values()]})
    if truth is not None:
        counts = np.bincount(truth.ravel(), minlength=12)[:11] / truth.size
        shares["simulator labels %"] = 100 * counts
    agree = float((results["source_only"]["mask"] == results["adapted"]["mask"]).mean())
    st.metric("Pixels where the two models agree", f"{agree:.1%}")
    st.dataframe(shares.round(1), hide_index=True, key="driving_shares")
    with st.expander("Model card (adapted)"):
        st.markdown(models["adapted"].card or "")
    with st.expander("Model card (source-only)"):
        st.markdown(models["source_only"].card or "")


def adapt_tab():
    """AdaBN on the user's own unlabelled frames: no labels, a few seconds on a CPU."""
    from suite.core import SuiteError
    from suite.driving.segment import adabn_solution, overlay

    st.subheader("Adapt to your camera")
    st.caption("Upload unlabelled frames from your own camera or city (up to 64 are used). The chosen model "
               "re-estimates its normalisation statistics on them (AdaBN): no labels, seconds on a CPU. On CamVid, "
               "AdaBN lifted the network trained on simulator frames by 7-8 mIoU, but cost the shipped adapted model "
               "2 (it was then self-trained on real frames and already fits them). The shipped model's card lists "
               "the commands that made it: the simulator run (about 25 minutes on one CPU core), then two "
               "self-training rounds (about 8 minutes each), for example:")
    st.code("python -m suite.driving.dacs --camvid CAMVID_ROOT --method self_train "
            "--init suite/driving/solutions/sim2real_adapted --steps 400 --lr 6e-5 --out runs/round1 "
            "--ship runs/my_solutions", language="bash")
    uploads = st.file_uploader("Unlabelled frames", type=["png", "jpg", "jpeg", "bmp"], accept_multiple_files=True,
                               key="driving_adapt_frames")
    base = st.radio("Start from", ["adapted", "source_only"], horizontal=True, key="driving_adapt_base")
    if not uploads or not st.button("Adapt (AdaBN)", key="driving_adapt_go"):
        if "driving_adabn" not in st.session_state:
            return
    else:
        frames = [im for im in (read_upload(u) for u in uploads) if im is not None]
        try:
            adapted, layers = adabn_solution(solutions()[base], frames)
        except SuiteError as exc:
            st.error(str(exc))
            return
        st.session_state["driving_adabn"] = (adapted, layers, np.asarray(frames[0].convert("RGB")), base)
    adapted, layers, first, base = st.session_state["driving_adabn"]
    st.success(f"{layers} BatchNorm layers re-estimated on your frames.")
    before, after = solutions()[base].predict(first), adapted.predict(first)
    cols = st.columns(2)
    cols[0].image(overlay(first, before["mask"]), caption=f"{base} (before)", width="stretch")
    cols[1].image(overlay(first, after["mask"]), caption="after AdaBN on your frames", width="stretch")
    st.markdown(legend_html(), unsafe_allow_html=True)
    import tempfile
    from pathlib import Path

    from apps.adapt_view import zip_directory

    with tempfile.TemporaryDirectory() as tmp:
        data = zip_directory(adapted.save(Path(tmp) / adapted.name))
    st.download_button("Download the adapted solution (.zip)", data, file_name=f"{adapted.name}.zip",
                       key="driving_adapt_download")


tabs = st.tabs(["Try", "Adapt", "Compare", "Explore"])
with tabs[0]:
    try_tab()
with tabs[1]:
    adapt_tab()
with tabs[2]:
    from apps.compare_view import compare_view

    compare_view("driving")
with tabs[3]:
    from apps.explore_view import explore_view

    explore_view("driving")
