"""Home: what transfer learning buys, with the suite's own measured numbers, and the way in."""

import streamlit as st

from apps.home_numbers import data_efficiency_rows, shipped_solutions

st.title("suite: transfer learning that works from little data")
st.markdown(
    """
A model pretrained on millions of images or sentences already knows edges, textures, shapes and
words. Transfer learning reuses that knowledge, so a new task needs hundreds of labelled examples
instead of hundreds of thousands, and trains in minutes on a laptop CPU. Everything here runs
offline, on backbones that ship inside the installed packages.
"""
)

st.subheader("What transfer buys, measured here")
rows = data_efficiency_rows()
if rows:
    st.caption("Same architecture (EfficientNet-Lite0), same epochs, test images never trained on; "
               "ImageNet-pretrained vs random initialisation. `python benchmarks/data_efficiency.py`")
    cols = st.columns(len(rows))
    for col, row in zip(cols, rows):
        col.metric(f"{row['data']}, {row['n_train']} labelled images", f"{row['pretrained']:.0%} pretrained",
                   f"{row['pretrained'] - row['scratch']:+.0%} vs {row['scratch']:.0%} from scratch")

st.subheader("Ready-made solutions")
VERTICALS = [
    ("views/medical.py", "Medical imaging", ":material/radiology:",
     "Chest X-ray pneumonia (PNG/JPEG/DICOM) and MRI volumes (NIfTI), with Grad-CAM."),
    ("views/agriculture.py", "Plant disease", ":material/eco:",
     "Tomato leaf diseases from a photo, with a disease card and a field-robustness report."),
    ("views/finance.py", "Financial sentiment", ":material/monitoring:",
     "Sentiment of news and filings, per ticker and day, with the words that drove it."),
    ("views/driving.py", "Sim-to-real driving", ":material/directions_car:",
     "Street-scene segmentation trained in a simulator and adapted to real dashcam frames."),
]
solutions = shipped_solutions()
for page, title, icon, text in VERTICALS:
    with st.container(border=True):
        st.page_link(page, label=title, icon=icon)
        st.write(text)
        for name, line in solutions.get(page.split("/")[1][:-3], []):
            st.caption(f"`{name}`: {line}")

st.markdown(
    """
Each vertical page has four tabs: **Try** the ready-made model on your own file, **Adapt** it to
your data (upload a zip or CSV, get advice on backbone and strategy, train with a live chart,
download the result), **Compare** transfer against scratch and adapted against source-only from
the suite's benchmarks, and **Explore** unlabelled data before labelling it. **Backbones** lists
the model hub.

*Not for clinical, financial or safety-critical decisions: research and demonstration use only.*
"""
)
