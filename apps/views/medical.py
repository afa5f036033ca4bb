"""Medical imaging: chest X-rays (PNG/JPEG/DICOM) and volumes. Not for clinical use."""

import pandas as pd
import streamlit as st

from apps.common import MAX_UPLOAD_BYTES

NOTICE = ("**Not for clinical use.** These are research and demonstration models, not medical devices: "
          "never use them to diagnose, treat or triage patients.")

st.title("Medical imaging")
st.caption("Chest X-ray classification (PNG, JPEG, DICOM) with Grad-CAM, and MRI/CT volumes.")
st.warning(NOTICE)


def _as_xray(solution):
    """A Solution trained on the Adapt tab or uploaded, read as radiographs (DICOM, warnings, notice)."""
    from suite.medical.xray import XraySolution

    if solution is None or isinstance(solution, XraySolution):
        return solution
    return XraySolution(solution.model, solution.labels, metrics=solution.metrics, recipe=solution.recipe,
                        name=solution.name, description=solution.description, card=solution.card,
                        threshold=solution.threshold, extra=solution.extra, guard=solution.guard)


@st.cache_resource(show_spinner="Loading the chest X-ray model...")
def pneumonia_solution():
    from suite.medical import load_pneumonia

    return load_pneumonia()


def _read(upload):
    """The uploaded X-ray as an XrayInput, or None after showing the problem."""
    from suite.core import SuiteError
    from suite.medical import load_xray

    data = upload.getvalue()
    if len(data) > MAX_UPLOAD_BYTES:
        st.error(f"{upload.name}: {len(data) / 1e6:.1f} MB is more than the {MAX_UPLOAD_BYTES // 2**20} MB limit.")
        return None
    try:
        return load_xray(data, name=upload.name)
    except SuiteError as exc:
        st.error(str(exc))
        return None


def xray_view() -> None:
    from suite.medical import PNEUMONIA

    if not (PNEUMONIA / "config.json").is_file():
        st.info("The ready-made chest X-ray model is not installed with this copy of the suite.")
        return
    from apps.adapt_view import solution_choice

    solution = _as_xray(solution_choice("medical", {"ready-made pneumonia model": pneumonia_solution}))
    if solution is None:
        return
    upload = st.file_uploader("A frontal chest X-ray (PNG, JPEG or DICOM)",
                              type=["png", "jpg", "jpeg", "dcm", "dicom"], key="xray")
    if upload is None:
        st.caption("DICOM files are read with their rescale, window or VOI LUT, and MONOCHROME1 is inverted; "
                   "any size works (the model first brings the image to its training resolution).")
        return
    x = _read(upload)
    if x is None:
        return
    result = solution.predict(x)
    for warning in result["warnings"]:
        st.warning(warning)
    shown, explained, details = st.columns(3)
    shown.image(x.image, caption=f"{upload.name}: {result['input']}", width="stretch")
    try:
        from suite.core.explain import explain_image

        _, overlay, _ = explain_image(solution, x, class_idx=solution.labels.index(result["label"]))
        explained.image(overlay, caption=f"Grad-CAM for '{result['label']}' on the model's input", width="stretch")
    except ImportError:
        explained.caption("Grad-CAM: coming soon.")
    except Exception as exc:  # an explanation failure must not hide the prediction
        explained.caption(f"Grad-CAM unavailable: {exc}")
    details.metric("Prediction", result["label"], f"P = {result['probs'][result['label']]:.1%}",
                   delta_color="off")
    details.dataframe(pd.DataFrame(list(result["probs"].items()), columns=["class", "probability"]),
                      hide_index=True)
    details.caption(f"Input: {result['input']}")
    if solution.task == "binary":
        details.caption(f"Decision threshold on P({solution.labels[1]}): {solution.threshold:.3f}, chosen on the "
                        "validation split.")
    if result.get("ood_score") is not None:
        details.caption(f"Input guard score {result['ood_score']:.2f} (above 1: unlike the training X-rays).")
    st.caption(result["notice"])
    with st.expander("Model card"):
        st.markdown(solution.card or "No model card.")


def volume_view() -> None:
    try:
        from apps.medical_volume_view import volume_try_view
    except ImportError:
        st.info("Volumes (NIfTI MRI/CT) are coming soon.")
    else:
        volume_try_view("medical_volume")


def try_tab() -> None:
    mode = st.radio("Input", ["X-ray (2D)", "Volume (3D)"], horizontal=True, key="medical_mode")
    if mode == "X-ray (2D)":
        xray_view()
    else:
        volume_view()


tabs = st.tabs(["Try", "Adapt", "Compare", "Explore"])
with tabs[0]:
    try_tab()
with tabs[1]:
    from apps.adapt_view import adapt_view

    adapt_view("medical", strategy="full", epochs=3, image_size=64, augment="medical",
               task_note="Grayscale X-rays train with a one-channel first convolution. For DICOM files, "
                         "patient ids and a validation-chosen threshold use `suite.medical.adapt_xrays` "
                         "from Python (CSV with a patient column, or `patient_pattern`).")
with tabs[2]:
    from apps.compare_view import compare_view

    compare_view("medical")
with tabs[3]:
    from apps.explore_view import explore_view

    explore_view("medical_explore")
