"""Backbones: the model hub, and the embedded ImageNet model on an uploaded photo."""

import pandas as pd
import streamlit as st

from apps.common import imagenet_solution, read_upload

st.title("Backbones")
st.caption("Specs the hub understands; 'offline' says whether each one loads on this machine right now.")


@st.cache_data(show_spinner=False)
def model_table():
    from suite.core import list_models

    return pd.DataFrame([r.__dict__ for r in list_models()])


st.dataframe(model_table(), hide_index=True, width="stretch")

st.subheader("Try the embedded ImageNet model")
upload = st.file_uploader("A photo (PNG or JPEG)", type=["png", "jpg", "jpeg", "bmp", "webp"], key="photo")
if upload is not None:
    image = read_upload(upload)
    if image is not None:
        solution = imagenet_solution()
        result = solution.predict(image)
        top = sorted(result["probs"].items(), key=lambda kv: -kv[1])[:5]
        left, right = st.columns(2)
        left.image(image, caption=upload.name, width="stretch")
        right.metric("Prediction", result["label"], f"{result['score']:.1%}")
        right.dataframe(pd.DataFrame(top, columns=["class", "probability"]), hide_index=True)
