"""Whether the console can require sign-in, and whether an address is this machine only.

Sign-in is Streamlit's OpenID Connect: an `[auth]` section in `.streamlit/secrets.toml`
(the working directory's, else the home folder's) with `redirect_uri`, `cookie_secret` and a
provider (`client_id`, `client_secret`, `server_metadata_url`, at the top of `[auth]` or in
a named `[auth.NAME]` section).
"""

from __future__ import annotations

import ipaddress
import socket
import tomllib
from pathlib import Path
from typing import Any

SECRETS_FILES = (Path(".streamlit/secrets.toml"), Path.home() / ".streamlit/secrets.toml")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def sign_in_configured(files: tuple[Path, ...] = SECRETS_FILES) -> bool:
    """True when the first secrets file with an [auth] section configures a provider."""
    for path in files:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        auth = doc.get("auth")
        if isinstance(auth, dict):
            return _complete(auth)
    return False


def auth_section_complete(auth: dict[str, Any]) -> bool:
    """True when an [auth] section has what st.login needs (see the module docstring)."""
    return _complete(auth)


def _complete(auth: dict[str, Any]) -> bool:
    if not all(isinstance(auth.get(k), str) and auth[k] for k in ("redirect_uri", "cookie_secret")):
        return False
    sections = [auth, *(v for v in auth.values() if isinstance(v, dict))]
    return any(all(isinstance(s.get(k), str) and s[k] for k in PROVIDER_KEYS) for s in sections)


def is_loopback(address: str) -> bool:
    """True when every address the name resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(address, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)
