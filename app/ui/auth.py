"""Sign-in for the console: Streamlit's OpenID Connect (`st.login`, `st.user`) when
`.streamlit/secrets.toml` has an `[auth]` section, else local mode.

Every page gets the person through `identity()`; the logic layer (flag actions, incidents,
uploads) checks that person's role, so a hidden button is a convenience, not the check.
"""

from __future__ import annotations

import getpass
import os

import streamlit as st

from app.access.identity import Identity, Source
from app.access.roles import AccessError, load_access
from app.access.signin import auth_section_complete
from app.config import resolve_data_dir

UNAUTHENTICATED_ENV = "ROLLBACK_DESK_UNAUTHENTICATED"  # set by `serve` (app/commands/serve.py)


def sign_in_configured() -> bool:
    """True when the secrets have an [auth] section for st.login; a section without what
    st.login needs stops the page with the reason (rather than serving without sign-in)."""
    try:
        if "auth" not in st.secrets:
            return False
        section = st.secrets["auth"].to_dict()
    except Exception:  # noqa: BLE001 - no secrets file, or one Streamlit cannot parse
        return False
    if not auth_section_complete(section):
        st.error(
            "Sign-in is configured incompletely: [auth] in .streamlit/secrets.toml needs "
            "redirect_uri, cookie_secret, client_id, client_secret and "
            "server_metadata_url (docs/security.md).",
            icon="🛑",
        )
        st.stop()
    return True


def gate() -> Identity:
    """Called by the router before any page: the signed-in person, or a sign-in page (and
    the run stops), or the local identity when sign-in is not configured."""
    try:
        access = load_access(resolve_data_dir())
    except AccessError as exc:
        st.error(f"Access rules: {exc}", icon="🛑")
        st.stop()
    if os.environ.get(UNAUTHENTICATED_ENV) == "1":
        st.error(
            "**No sign-in on a network address.** This console was started with "
            "`--allow-unauthenticated`: anyone who can reach it can act on flags.",
            icon="🚨",
        )
    if not sign_in_configured():
        who = access.local(f"{_os_user()}@local")
        st.session_state["identity"] = who
        return who
    if not st.user.get("is_logged_in"):
        st.title("🧯 Rollback Desk")
        st.write("Sign in to see incidents and act on flags.")
        st.button("Sign in", type="primary", on_click=st.login, key="sign_in")
        st.stop()
    who = access.signed_in(st.user.to_dict())
    st.session_state["identity"] = who
    return who


def identity() -> Identity:
    """The person of this session (set by the router's gate)."""
    who = st.session_state.get("identity")
    if isinstance(who, Identity):
        return who
    return gate()


def sidebar(who: Identity) -> None:
    if who.source is Source.SIGNED_IN:
        st.caption(f"Signed in as **{who.display_name or who.name}** · {who.name} · {who.role}")
        st.button("Sign out", on_click=st.logout, key="sign_out")
    else:
        st.warning(
            f"Local mode: anyone on this machine can act (as {who.role}). "
            "See docs/security.md to require sign-in.",
            icon="🔓",
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"
