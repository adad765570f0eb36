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
signed-in people are viewers and local mode is admin. The shape and the role names are
checked by `app/configuration/schemas/access.json`; this module adds that two users do not
differ only in the case of their email (emails are compared without case). An error names
the file, the line and the key, and says what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.access.identity import Identity, Role, Source
from app.configuration import ConfigFileError, Document, Problem, check, load_yaml

ACCESS_FILE = "access.yaml"
VOCABULARIES = {"role": tuple(r.value for r in Role)}


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


class AccessError(ConfigFileError):
    """access.yaml is not valid; the message names the file, the line and the key."""


class AccessDenied(PermissionError):
    """The identity's role does not allow the permission; the message says who and why."""

    def __init__(self, identity: Identity, permission: Permission) -> None:
        self.identity, self.permission = identity, permission
        super().__init__(
            f"{identity.name} is a {identity.role}: may not {permission} (needs {NEEDS[permission]})"
        )


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
        return Identity(name=name, role=self.role_for(claims), source=Source.SIGNED_IN, display_name=display)

    def local(self, name: str, source: Source = Source.LOCAL) -> Identity:
        return Identity(name=name, role=self.local_role, source=source)


def require(identity: Identity, permission: Permission) -> None:
    """Return when the identity may do it; raise AccessDenied otherwise."""
    if not identity.role.includes(NEEDS[permission]):
        raise AccessDenied(identity, permission)


def allowed(identity: Identity, permission: Permission) -> bool:
    return identity.role.includes(NEEDS[permission])


def load_access(data_dir: Path) -> AccessConfig:
    """The access rules of a data directory (defaults when access.yaml does not exist or is
    empty). Raises AccessError listing every problem of the file."""
    path = Path(data_dir) / ACCESS_FILE
    if not path.exists():
        return AccessConfig(path=path)
    return parse_access(
        load_yaml(path, "access", error=AccessError, empty={}, vocabularies=VOCABULARIES), path
    )


def parse_access(raw: Document | Any, path: Path) -> AccessConfig:
    """The access rules of a document read by `load_access`, or of a plain mapping built in
    code (checked against the same schema; its messages name no line). Raises AccessError."""
    built_in_code = not isinstance(raw, Document)
    doc = Document(path=Path(path), data={} if raw is None else raw) if built_in_code else raw
    if built_in_code:
        _raise_any(check(doc, "access", VOCABULARIES), built_in_code)
    data: dict[str, Any] = doc.data
    users: dict[str, Role] = {}
    first: dict[str, str] = {}
    problems = []
    for name, role in (data.get("users") or {}).items():
        email = name.strip().lower()
        if email in first:
            where = "" if built_in_code else f" (line {doc.line(('users', first[email]))})"
            problems.append(
                doc.problem(
                    ("users", name),
                    f"the same email as {first[email]}{where}; emails are compared without case, keep one",
                )
            )
        first.setdefault(email, name)
        users[email] = Role(role)
    _raise_any(problems, built_in_code)
    return AccessConfig(
        path=Path(path),
        default_role=Role(data.get("default_role", "viewer")),
        local_role=Role(data.get("local_role", "admin")),
        groups_claim=data.get("groups_claim", "groups"),
        users=users,
        groups={name.strip(): Role(role) for name, role in (data.get("groups") or {}).items()},
    )


def _raise_any(problems: list[Problem], built_in_code: bool) -> None:
    if built_in_code:  # a mapping built in code has no lines to name
        problems = [replace(p, line=None) for p in problems]
    if problems:
        raise AccessError(problems)
