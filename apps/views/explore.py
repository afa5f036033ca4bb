"""Explore: what is in an unlabelled folder of images, volumes or texts, and what to label first."""

import streamlit as st

from apps.explore_view import explore_view

st.title("Explore unlabelled data")
st.caption("Pretrained features, no training: clusters, a 2D map, near duplicates, outliers, and a diverse, "
           "representative list of items to label first. With labels (class folders, `text@label` lines) the "
           "page also measures how well the backbone already separates them.")
explore_view("explore")
