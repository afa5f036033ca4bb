"""Try tab for volumes: upload a NIfTI MRI/CT, see per-slice probabilities and Grad-CAM by slice.

``volume_try_view(key)`` is what the medical page calls. Logic lives in ``suite.medical``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

MAX_VOLUME_BYTES = 200 * 1024 * 1024
NOTICE = ("**Not for clinical use.** Research and demonstration models trained on a few public scans: "
          "never use them to diagnose, treat or triage patients.")
MODELS = {
    "Brain MRI FLAIR: tumour per axial slice": "mri",
    "Adrenal CT crop: adrenal mass (3D CNN)": "adrenal3d",
}


@st.cache_resource(show_spinner="Loading the MRI slice model...")
def _mri_solution():
    from suite.medical.mri import load_solution

    return load_solution()


@st.cache_resource(show_spinner="Loading the 3D model...")
def _adrenal_solution():
    from suite.core import Solution
    from suite.medical.adrenal3d import DIR_3D

    return Solution.load(DIR_3D)


def _installed(kind: str) -> bool:
    from suite.medical.adrenal3d import DIR_3D
    from suite.medical.mri import SOLUTION_DIR

    return ((SOLUTION_DIR if kind == "mri" else DIR_3D) / "config.json").is_file()


def _read_volume(upload):
    """The uploaded NIfTI as a Volume, or None after showing why it cannot be used."""
    from suite.core import SuiteError
    from suite.medical.volumes import load_nifti

    data = upload.getvalue()
    if len(data) > MAX_VOLUME_BYTES:
        st.error(f"{upload.name}: {len(data) / 1e6:.0f} MB is more than the {MAX_VOLUME_BYTES // 2**20} MB limit.")
        return None, None
    try:
        return load_nifti(data, name=upload.name), hashlib.sha1(data).hexdigest()
    except SuiteError as exc:
        st.error(str(exc))
        return None, None


def _cached(key: str, digest: str, compute):
    """One result per uploaded file and model, kept while the slider moves."""
    slot = st.session_state.get(key)
    if slot is None or slot[0] != digest:
        slot = (digest, compute())
        st.session_state[key] = slot
    return slot[1]


def _mri_view(key: str, volume, digest: str) -> None:
    import pandas as pd

    from suite.medical.mri import explain_slice, predict_volume

    solution = _mri_solution()
    with st.spinner("Classifying every axial slice..."):
        out = _cached(f"{key}_mri", digest, lambda: predict_volume(solution, volume))
    probs, images, ood = out["probs"], out["images"], out["ood"]
    st.caption(f"{volume.name}: {volume.array.shape} voxels at {tuple(round(s, 2) for s in volume.spacing)} mm, "
               f"orientation {''.join(volume.axcodes)} (read as RAS, resampled to 1 mm); {len(probs)} axial slices.")
    chart = pd.DataFrame({f"P({out['label']})": probs}, index=pd.RangeIndex(len(probs), name="axial slice"))
    st.line_chart(chart, height=220)
    if ood is not None and any(ood):
        st.warning(f"{sum(ood)} of {len(ood)} slices look unlike the training slices (input guard): their "
                   "probabilities are not trustworthy. Slices outside the brain are expected to be flagged.")
    best = int(np.argmax(probs))
    k = st.slider("Axial slice", 0, len(probs) - 1, best, key=f"{key}_slice")
    left, right, details = st.columns(3)
    left.image(images[k], caption=f"slice {k}", width="stretch", clamp=True)
    try:
        right.image(explain_slice(solution, images[k]), caption=f"Grad-CAM for '{out['label']}'", width="stretch")
    except Exception as exc:  # an explanation failure must not hide the prediction
        right.caption(f"Grad-CAM unavailable: {exc}")
    details.metric(f"P({out['label']}) on slice {k}", f"{probs[k]:.1%}")
    details.metric("Most likely slice", f"{best}", f"P = {probs[best]:.1%}", delta_color="off")
    if ood is not None:
        details.caption("Input guard: " + ("unlike the training slices" if ood[k] else "like the training slices"))
    with st.expander("Model card"):
        st.markdown(solution.card or "No model card.")


def _adrenal_view(key: str, volume, digest: str) -> None:
    from suite.core.explain import overlay
    from suite.medical.adrenal3d import predict_volume_3d

    solution = _adrenal_solution()
    with st.spinner("Running the 3D model..."):
        out = _cached(f"{key}_3d", digest, lambda: predict_volume_3d(solution, volume))
    result, cam, shown = out["result"], out["cam"], out["volume"]
    st.caption(f"{volume.name}: {volume.array.shape} voxels, resized to 28x28x28 and scaled to [0, 1]; the model "
               "was trained on MedMNIST crops around the adrenal glands, so other scans are out of its scope.")
    if result.get("ood"):
        st.warning(f"This volume looks unlike the training volumes (input guard score {result['ood_score']:.2f} > 1): "
                   "the prediction is not trustworthy.")
    k = st.slider("Axial slice (Grad-CAM in 3D, shown slice by slice)", 0, len(cam) - 1, len(cam) // 2,
                  key=f"{key}_slice3d")
    left, right, details = st.columns(3)
    left.image(shown[k], caption=f"slice {k}", width="stretch", clamp=True)
    right.image(overlay(shown[k], cam[k]), caption=f"Grad-CAM for '{solution.labels[-1]}'", width="stretch")
    details.metric("Prediction", result["label"], f"P = {result['score']:.1%}", delta_color="off")
    with st.expander("Model card"):
        st.markdown(solution.card or "No model card.")


def volume_try_view(key: str) -> None:
    """Upload a NIfTI volume and run a ready-made volume solution on it."""
    st.warning(NOTICE)
    choice = st.selectbox("Model", list(MODELS), key=f"{key}_model")
    kind = MODELS[choice]
    if not _installed(kind):
        st.info("This ready-made model is not installed with this copy of the suite.")
        return
    upload = st.file_uploader("A NIfTI volume (.nii or .nii.gz)", type=["nii", "gz"], key=f"{key}_upload")
    if upload is None:
        st.caption("Volumes are read with MONAI, reoriented to RAS and prepared as the model was trained "
                   "(1 mm spacing and a foreground z-score for the MRI model). Other formats are refused.")
        return
    volume, digest = _read_volume(upload)
    if volume is None:
        return
    if kind == "mri":
        _mri_view(key, volume, digest)
    else:
        _adrenal_view(key, volume, digest)
