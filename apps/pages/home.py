"""Home: what the suite is and what transfer learning buys."""

import streamlit as st

st.title("suite: transfer learning that works from little data")
st.markdown(
    """
A model pretrained on millions of images or sentences already knows edges, textures, shapes and
words. Transfer learning reuses that knowledge, so a new task needs hundreds of labelled examples
instead of hundreds of thousands, and trains in minutes on a laptop CPU.

**What is here now**
- **Backbones** (left): the model hub. Every backbone, from timm, torchvision, Hugging Face,
  MONAI or embedded in the installed packages, comes with its own preprocessing. The embedded
  ones work with no network at all. Upload a photo to see the embedded ImageNet model at work.
- **Explore** (left): upload a zip of unlabelled images or texts and see, before any training,
  what is in it: clusters, a map, near duplicates, outliers, and which items to label first.
- **The engine** (command line and Python): `suite train` fine-tunes any backbone on your data
  with seven strategies and eight domain-adaptation methods and writes an honest report; see the
  README for the measured numbers.

**Verticals being built on the same core**: chest X-ray and MRI classification (medical), plant
disease detection (agriculture), financial sentiment (finance), sim-to-real driving perception
(driving). Their pages appear here as they land.

*Not for clinical, financial or safety-critical decisions: research and demonstration use only.*
"""
)
