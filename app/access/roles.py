"""Roles from `<data dir>/access.yaml`, and the permission checks of the logic layer.

    default_role: viewer          # anyone signed in and not listed below
    local_role: admin             # the app without sign-in (local mode) and the CLI
    groups_claim: groups          # the ID-token claim that lists a person's groups
    users:
      ana@example.com: responder  # by email (case-insensitive)
    groups:
      incident-responders: responder
      platform-admins: admin

A person gets the highest role among their email's and their groups'. Without the file:
signed-in people are viewers and local mode is admin. The file is validated on load; an
error names the file and the key and says what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.access.identity import Identity, Role, Source
from app.configuration import ConfigFileError
from app.configuration.documents import read_yaml

ACCESS_FILE = "access.yaml"
TOP_KEYS = {"default_role", "local_role", "groups_claim", "users", "groups"}


class Permission(StrEnum):
    FLAG_ACTION = "act on a flag"
    INCIDENT_WRITE = "change an incident"
    MESSAGE_SEND = "send an incident message"
    UPLOAD = "load or upload data"
    CONFIGURE = "change the configuration"
    SQL_CONSOLE = "run SQL in the console"
    EXPORT = "export requests"


NEEDS: dict[Permission, Role] = {
    Permission.FLAG_ACTION: Role.RESPONDER,
    Permission.INCIDENT_WRITE: Role.RESPONDER,
    Permission.MESSAGE_SEND: Role.RESPONDER,
    Permission.UPLOAD: Role.ADMIN,
    Permission.CONFIGURE: Role.ADMIN,
    Permission.SQL_CONSOLE: Role.ADMIN,
    Permission.EXPORT: Role.RESPONDER,
}


class AccessError(ValueError):
    """access.yaml is not valid; the message names the file and the key."""


class AccessDenied(PermissionError):
    """The identity's role does not allow the permission; the message says who and why."""

    def __init__(self, identity: Identity, permission: Permission) -> None:
        self.identity, self.permission = identity, permission
        super().__init__(f"{identity.name} is a {identity.role}: may not {permission} "
                         f"(needs {NEEDS[permission]})")


@dataclass(frozen=True)
class AccessConfig:
    path: Path
    default_role: Role = Role.VIEWER
    local_role: Role = Role.ADMIN
    groups_claim: str = "groups"
    users: dict[str, Role] = field(default_factory=dict)  # lower-case email -> role
    groups: dict[str, Role] = field(default_factory=dict)

    def role_for(self, claims: dict[str, Any]) -> Role:
        """The role of a signed-in person from their ID-token claims."""
        found = [self.default_role]
        email = claims.get("email")
        if isinstance(email, str) and email.lower() in self.users:
            found.append(self.users[email.lower()])
        member_of = claims.get(self.groups_claim) or []
        if isinstance(member_of, str):
            member_of = [member_of]
        if isinstance(member_of, list):
            found += [self.groups[g] for g in member_of if isinstance(g, str) and g in self.groups]
        return max(found, key=lambda r: r.rank)

    def signed_in(self, claims: dict[str, Any]) -> Identity:
        """The identity of a signed-in person: the email (else the subject) and the role."""
        email, subject = claims.get("email"), claims.get("sub")
        name = email if isinstance(email, str) and email else f"sub:{subject}"
        display = claims.get("name") if isinstance(claims.get("name"), str) else None
        return Identity(name=name, role=self.role_for(claims), source=Source.SIGNED_IN,
                        display_name=display)

    def local(self, name: str, source: Source = Source.LOCAL) -> Identity:
        return Identity(name=name, role=self.local_role, source=source)


def require(identity: Identity, permission: Permission) -> None:
    """Return when the identity may do it; raise AccessDenied otherwise."""
    if not identity.role.includes(NEEDS[permission]):
        raise AccessDenied(identity, permission)


def allowed(identity: Identity, permission: Permission) -> bool:
    return identity.role.includes(NEEDS[permission])


def load_access(data_dir: Path) -> AccessConfig:
    """The access rules of a data directory (defaults when access.yaml does not exist)."""
    path = Path(data_dir) / ACCESS_FILE
    if not path.exists():
        return AccessConfig(path=path)
    try:
        raw = read_yaml(path).data
    except ConfigFileError as exc:
        raise AccessError(str(exc)) from None
    return parse_access(raw if raw is not None else {}, path)


def parse_access(raw: Any, path: Path) -> AccessConfig:
    def fail(key: str, expected: str) -> AccessError:
        return AccessError(f"{path}: {key}: expected {expected}")

    if not isinstance(raw, dict):
        raise fail("(top level)", "a mapping with " + ", ".join(sorted(TOP_KEYS)))
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise fail(str(unknown[0]), "one of " + ", ".join(sorted(TOP_KEYS)))

    def role(value: Any, key: str) -> Role:
        if value not in {r.value for r in Role}:
            raise fail(key, "a role: " + ", ".join(r.value for r in Role) + f", got {value!r}")
        return Role(value)

    def table(key: str) -> dict[str, Role]:
        value = raw.get(key) or {}
        if not isinstance(value, dict):
            raise fail(key, "a mapping of name -> role")
        out = {}
        for name, r in value.items():
            if not isinstance(name, str) or not name.strip():
                raise fail(f"{key}.{name}", "a non-empty name")
            out[name.strip().lower() if key == "users" else name.strip()] = role(r, f"{key}.{name}")
        return out

    claim = raw.get("groups_claim", "groups")
    if not isinstance(claim, str) or not claim:
        raise fail("groups_claim", "the name of a claim, like groups")
    return AccessConfig(
        path=path,
        default_role=role(raw.get("default_role", "viewer"), "default_role"),
        local_role=role(raw.get("local_role", "admin"), "local_role"),
        groups_claim=claim,
        users=table("users"),
        groups=table("groups"),
    )
