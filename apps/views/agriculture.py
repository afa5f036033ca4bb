"""Agriculture: tomato leaf disease detection that says when a photo is not a leaf it knows."""

import pandas as pd
import streamlit as st

from apps.common import read_upload

st.title("Plant disease detection")
st.caption("One tomato leaf photo in: the likely disease with probabilities, where the model looked (Grad-CAM), "
           "what the disease is and how it is usually managed. Research and demonstration use only.")


@st.cache_resource(show_spinner="Loading the tomato model...")
def tomato_solution():
    from suite.agriculture.diagnose import load_tomato

    return load_tomato()


@st.cache_resource(show_spinner="Loading the tomato ensemble...")
def tomato_ensemble_solution():
    from suite.agriculture.diagnose import TOMATO_ENSEMBLE, load_tomato

    return load_tomato(TOMATO_ENSEMBLE)


def _simulate(image, name: str, severity: int):
    """The photo as a field camera might see it (a corruption from the robustness report)."""
    from suite.core.data import corruption

    return image if name == "none" else corruption(name, severity)(image.convert("RGB"))


def try_tab() -> None:
    from suite.agriculture.data import display_name
    from suite.agriculture.diagnose import TOMATO, TOMATO_ENSEMBLE, diagnose
    from suite.agriculture.robustness import FIELD_CORRUPTIONS

    if not (TOMATO / "config.json").is_file():
        st.info("The ready-made tomato model is not installed with this copy of the suite.")
        return
    from apps.adapt_view import solution_choice

    ready_made = {"ready-made tomato model": tomato_solution}
    if (TOMATO_ENSEMBLE / "config.json").is_file():
        ready_made["ready-made tomato ensemble (3 networks: more accurate, 3x slower)"] = tomato_ensemble_solution
    solution = solution_choice("agriculture", ready_made)
    if solution is None:
        return
    upload = st.file_uploader("A photo of one tomato leaf (PNG or JPEG)", type=["png", "jpg", "jpeg", "bmp", "webp"],
                              key="leaf")
    left, middle, right = st.columns(3)
    tta = left.checkbox("Test-time augmentation (flips and zoom, 4x slower)", key="tta")
    field = middle.selectbox("Simulate field conditions", ["none", *FIELD_CORRUPTIONS], key="field")
    severity = right.slider("Severity", 1, 5, 3, key="severity", disabled=field == "none")
    if upload is None:
        st.caption("Tip: the model was trained on single leaves on a plain background, like PlantVillage photos.")
        return
    image = read_upload(upload)
    if image is None:
        return
    image = _simulate(image, field, severity)
    result = diagnose(solution, image, tta=tta)
    if result.unknown:
        st.warning("**Unknown or not a leaf.** " + " ".join(result.warnings))
    elif result.warnings:
        st.info(" ".join(result.warnings))
    shown, explained, details = st.columns(3)
    shown.image(image, caption=upload.name + ("" if field == "none" else f" ({field}, severity {severity})"),
                width="stretch")
    try:
        from suite.core.explain import explain_image

        cam, overlay, _ = explain_image(solution, image)
        explained.image(overlay, caption="Grad-CAM: where the model looked for its top class", width="stretch")
    except Exception as exc:  # an explanation failure must not hide the prediction
        explained.caption(f"Grad-CAM unavailable: {exc}")
    verdict = "Unknown" if result.unknown else display_name(result.label)
    details.metric("Prediction", verdict, f"{result.score:.1%}" + (" (TTA)" if result.tta else ""))
    details.dataframe(pd.DataFrame([(display_name(lab), p) for lab, p in result.top],
                                   columns=["class", "probability"]), hide_index=True)
    details.caption(f"Leaf-coloured share of the photo: {result.leaf_share:.0%}"
                    + (f"; input guard score {result.ood_score:.2f} (above 1: unlike the training photos)"
                       if result.ood_score is not None else ""))
    if result.card is not None:
        st.subheader(result.card.name)
        st.markdown(result.card.markdown())
    else:
        st.caption("No information card for this class.")
    with st.expander("Model card"):
        st.markdown(solution.card or "No model card.")


tabs = st.tabs(["Try", "Adapt", "Compare", "Explore"])
with tabs[0]:
    try_tab()
with tabs[1]:
    from apps.adapt_view import adapt_view

    adapt_view("agriculture", strategy="partial", epochs=8, lr=2e-3, image_size=128, augment="field",
               task_note="Class folders per disease (PlantVillage `Crop___Disease` names are fine). The "
                         "`field` preset imitates field photos: backgrounds, shadows, glare, blur, JPEG. These "
                         "are quick-start settings (EfficientNet-Lite0, 128 px: minutes on a laptop); the shipped "
                         "tomato model's recipe is `python -m suite.agriculture.train --data DIR --out RUN` "
                         "(EfficientNet-Lite2, 288 px, 20 epochs, `field_mix` preset: about 65 min on one CPU core).")
with tabs[2]:
    from apps.compare_view import compare_view

    compare_view("agriculture")
with tabs[3]:
    from apps.explore_view import explore_view

    explore_view("agriculture_explore")
