"""Who may do what in Investigate, checked here (not in the pages) so the CLI obeys it too.

The sign-in layer supplies an `Actor` (a name and a role); with no sign-in configured the
caller passes `None` and every action is allowed, as everywhere else in the console.
Roles rank viewer < responder < admin: exports need a responder, the SQL console an admin.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLE_RANK = {"viewer": 0, "responder": 1, "admin": 2}
CONSOLE_ROLE = "admin"
EXPORT_ROLE = "responder"


class PermissionDenied(PermissionError):
    """The signed-in person's role does not allow the action; the message says which role would."""


@dataclass(frozen=True)
class Actor:
    name: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLE_RANK:
            raise ValueError(f"role {self.role!r} is not one of {', '.join(ROLE_RANK)}")


def allowed(actor: Actor | None, needed: str) -> bool:
    return actor is None or ROLE_RANK[actor.role] >= ROLE_RANK[needed]


def require(actor: Actor | None, needed: str, action: str) -> None:
    """Raise PermissionDenied unless `actor` (None: no sign-in configured) holds `needed`."""
    if not allowed(actor, needed):
        raise PermissionDenied(f"{action} needs the {needed} role; {actor.name} is "
                               f"{actor.role}")


def actor_name(actor: Actor | None) -> str | None:
    return None if actor is None else actor.name
