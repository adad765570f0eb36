"""The Overview's warning for features burning error budget right now (slos.yaml)."""

from __future__ import annotations

import streamlit as st

from app.review.slos import SloConfigError
from app.timestamps import display
from app.ui import common
from app.ui.components import review_data


def burn_banner() -> None:
    dd = str(common.data_dir())
    try:
        alerts = review_data.burning_now(dd, common.data_version(), review_data.slos_version(dd))
    except SloConfigError as exc:
        st.warning(f"slos.yaml cannot be used: {exc}")
        return
    for a in alerts:
        st.warning(
            f"🔥 {a.feature} is burning its error budget: {a.slo} at "
            f"{a.peak_burn_rate:.1f}× ({a.rule}, since {display(a.start)}). "
            "See Review → Weekly review."
        )
