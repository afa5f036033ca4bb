"""The Compare tab: transfer vs scratch and source-only vs adapted, from the suite's own benchmarks.

Every table here was written by a script in ``benchmarks/`` (the command is in each table's
caption); nothing is computed or typed in by the page.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"

# vertical -> [(title, results file stem, script that writes it)]
COMPARISONS: dict[str, list[tuple[str, str, str]]] = {
    "medical": [
        ("Transfer vs scratch: PneumoniaMNIST", "data_efficiency_pneumonia", "benchmarks/data_efficiency.py"),
        ("Pneumonia solution vs published anchors", "medical_pneumonia", "benchmarks/medical_pneumonia.py"),
        ("Volumes: 3D from scratch vs 2.5D transfer, MRI per subject", "medical_3d", "benchmarks/medical_3d.py"),
    ],
    "agriculture": [
        ("Transfer vs scratch: PlantVillage tomato", "data_efficiency", "benchmarks/data_efficiency.py"),
        ("Transfer vs scratch: the shipped tomato recipe (Lite2, 288 px)", "data_efficiency_agriculture",
         "benchmarks/data_efficiency.py --recipe agriculture --sizes all"),
        ("Accuracy over leaf-aware splits: 288 px recipes on every training leaf (`field_mix288` is the shipped "
         "recipe), five splits", "agriculture_splits288",
         "benchmarks/agriculture_splits.py --recipes field_mix288 light288 --jobs 5 --workers 3"),
        ("Accuracy over leaf-aware splits: the recipe shipped before (a tenth of the training leaves held out for "
         "the guard)", "agriculture_cpu288c",
         "benchmarks/agriculture_splits.py --recipes field_mix288c --runs runs/cpu288 --name agriculture_cpu288c"),
        ("Averaging several runs (ensembles): accuracy against the number of runs averaged, splits 0-2",
         "agriculture_ensembles", "benchmarks/agriculture_ensembles.py --runs runs/cpu288 --splits 0 1 2"),
        ("The shipped ensemble's recipe (three runs averaged) on splits 0-2", "agriculture_ensemble3",
         "benchmarks/agriculture_ensembles.py --splits 0 1 2 --recipes field_mix288 field_mix288c light288 "
         "--name agriculture_ensemble3"),
        ("What one photo costs: the one-network model vs the ensemble", "agriculture_latency",
         "benchmarks/agriculture_latency.py"),
        ("Unknown or not a leaf: how often the shipped model refuses a photo", "agriculture_guard",
         "benchmarks/agriculture_guard.py"),
        ("Robustness to field conditions: `light`, the shipped `field_mix` model and the shipped ensemble",
         "agriculture_robustness_ensemble", "benchmarks/agriculture_robustness.py --soup "
         "suite/agriculture/solutions/tomato_ensemble --name agriculture_robustness_ensemble"),
        ("Robustness to field conditions: the shipped 288 px recipe (`field_mix`) vs `light`",
         "agriculture_robustness288", "benchmarks/agriculture_robustness.py"),
        ("Robustness to field conditions: 224 px runs, `field` vs `light`", "agriculture_robustness",
         "benchmarks/agriculture_robustness.py"),
    ],
    "finance": [
        ("PhraseBank: the offline solution vs FinBERT", "finance_phrasebank", "benchmarks/finance_phrasebank.py"),
        ("Scoring throughput", "finance_throughput", "benchmarks/finance_throughput.py"),
    ],
    "driving": [
        ("Sim-to-real with a frozen encoder: every adaptation method vs source-only and oracle (CamVid val)",
         "driving_sim2real",
         "benchmarks/driving_sim2real.py"),
        ("Source-only vs adapted: digits (USPS -> MNIST-M)", "digits_adaptation", "benchmarks/digits_adaptation.py"),
    ],
    "core": [
        ("Which strategy: the transfer advisor against an exhaustive search", "advisor_validation",
         "benchmarks/advisor_validation.py"),
        ("Cached features", "cached_features", "benchmarks/cached_features.py"),
    ],
}


@st.cache_data(show_spinner=False)
def _read(stem: str) -> str | None:
    path = RESULTS / f"{stem}.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def data_efficiency_frame(stem: str) -> pd.DataFrame | None:
    """Accuracy by labelled items per class, pretrained vs scratch, from a data-efficiency JSON."""
    path = RESULTS / f"{stem}.json"
    if not path.is_file():
        return None
    cells = json.loads(path.read_text()).get("cells", [])
    frame = pd.DataFrame([{"train images": c.get("n_train"),
                           "pretrained": c.get("pretrained", {}).get("metrics", {}).get("accuracy"),
                           "scratch": c.get("scratch", {}).get("metrics", {}).get("accuracy")} for c in cells])
    if frame.empty or frame.isna().any().any():
        return None
    return frame.set_index("train images")


def compare_view(vertical: str) -> None:
    """Show the benchmark tables for ``vertical`` (and the shared ones), each with its command."""
    st.subheader("Compare")
    st.caption("Measured by the suite's benchmark scripts on real data on a 2-core CPU; "
               "each table names its data, split and confidence intervals.")
    shown = 0
    for title, stem, script in COMPARISONS.get(vertical, []) + COMPARISONS["core"][:1]:
        text = _read(stem)
        if text is None:
            continue
        shown += 1
        with st.expander(title, expanded=shown == 1):
            frame = data_efficiency_frame(stem) if stem.startswith("data_efficiency") else None
            if frame is not None:
                st.line_chart(frame, x_label="labelled training images", y_label="test accuracy")
            st.markdown(text)
            st.caption(f"Reproduce: `python {script}`")
    if not shown:
        st.info("No benchmark results for this vertical yet: run the scripts in benchmarks/.")
