"""The suite's demo app: ``streamlit run apps/Home.py`` (or ``./run.sh app``)."""

from pathlib import Path
import sys

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

PAGES = Path(__file__).resolve().parent / "views"  # not pages/: Streamlit would also list that folder itself

st.set_page_config(page_title="suite: transfer learning", layout="wide")
navigation = st.navigation({
    "": [st.Page(str(PAGES / "home.py"), title="Home", icon=":material/home:", default=True)],
    "Verticals": [
        st.Page(str(PAGES / "medical.py"), title="Medical imaging", icon=":material/radiology:"),
        st.Page(str(PAGES / "agriculture.py"), title="Plant disease", icon=":material/eco:"),
        st.Page(str(PAGES / "finance.py"), title="Financial sentiment", icon=":material/monitoring:"),
        st.Page(str(PAGES / "driving.py"), title="Sim-to-real driving", icon=":material/directions_car:"),
    ],
    "Tools": [
        st.Page(str(PAGES / "backbones.py"), title="Backbones", icon=":material/hub:"),
        st.Page(str(PAGES / "explore.py"), title="Explore", icon=":material/scatter_plot:"),
    ],
})
navigation.run()
