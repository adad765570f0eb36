"""The person behind a press: who they are, how they were identified, and their role."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # read everything
    RESPONDER = "responder"  # flag actions, incidents, messages
    ADMIN = "admin"  # configuration, uploads and loads, the SQL console

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


class Source(StrEnum):
    SIGNED_IN = "signed-in"  # OpenID Connect through Streamlit's st.login
    LOCAL = "local"  # the app without sign-in, on this machine only
    CLI = "cli"  # the command line: the OS user, or --actor


@dataclass(frozen=True)
class Identity:
    name: str  # what the audit trail records: the email when known
    role: Role
    source: Source
    display_name: str | None = None  # the provider's `name` claim, for the page

    @property
    def label(self) -> str:
        """`ana@example.com (responder)`: the operator as the audit trail shows it."""
        return f"{self.name} ({self.role})"


def cli_user(actor: str | None = None) -> str:
    """The operator of a CLI command: --actor, else the OS user."""
    if actor and actor.strip():
        return actor.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "cli"
