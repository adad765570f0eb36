"""Who may do what in Investigate, checked here (not in the pages) so the CLI obeys it too.

The roles and what each permission needs are the console's own (app/access/roles.py): the
SQL console needs an admin, exports a responder. The page passes the person signed in (or
the local person, whose role access.yaml's `local_role` sets); `None` is a caller that
checked nothing itself (the CLI, run by whoever may run commands on this machine).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.access.identity import Identity, Role
from app.access.roles import NEEDS, Permission

ROLE_RANK = {role.value: role.rank for role in Role}
CONSOLE_ROLE = NEEDS[Permission.SQL_CONSOLE].value
EXPORT_ROLE = NEEDS[Permission.EXPORT].value


class PermissionDenied(PermissionError):
    """The signed-in person's role does not allow the action; the message says which role would."""


@dataclass(frozen=True)
class Actor:
    name: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLE_RANK:
            raise ValueError(f"role {self.role!r} is not one of {', '.join(ROLE_RANK)}")

    @classmethod
    def of(cls, identity: Identity) -> Actor:
        return cls(identity.name, identity.role.value)


def allowed(actor: Actor | None, needed: str) -> bool:
    return actor is None or ROLE_RANK[actor.role] >= ROLE_RANK[needed]


def require(actor: Actor | None, needed: str, action: str) -> None:
    """Raise PermissionDenied unless `actor` (None: no sign-in configured) holds `needed`."""
    if not allowed(actor, needed):
        raise PermissionDenied(f"{action} needs the {needed} role; {actor.name} is {actor.role}")


def actor_name(actor: Actor | None) -> str | None:
    return None if actor is None else actor.name
