"""What every flag backend offers, the typed values it returns, and the errors it raises.

A backend reads a flag's live state, turns it on or off in an environment, sets a rollout
percentage, sets the served variant, and lists its own change history. Backends raise only
`FlagError` subclasses, each carrying an `ErrorCode` and a message written for the person
on call ("Unleash at http://... unreachable"), never a token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class FlagRole(StrEnum):
    KILL_SWITCH = "kill_switch"
    ROLLOUT = "rollout"
    MODEL = "model"
    PROMPT = "prompt"
    AGENT_PAUSE = "agent_pause"


class Outcome(StrEnum):
    VERIFIED = "verified"
    UNVERIFIED = "unverified"
    FAILED = "failed"


class ErrorCode(StrEnum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    SERVER_ERROR = "server_error"
    INVALID_VALUE = "invalid_value"
    INVALID_CONFIG = "invalid_config"
    UNSAFE_CHANGE = "unsafe_change"
    UNSUPPORTED = "unsupported"
    NOT_ALLOWED = "not_allowed"  # the operator's role does not allow the action
    READBACK_MISMATCH = "readback_mismatch"
    BAD_RESPONSE = "bad_response"


class FlagError(Exception):
    """Base of every error a backend or an action raises; `str()` is the on-call message."""

    code: ErrorCode = ErrorCode.SERVER_ERROR
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BackendUnreachable(FlagError):
    code = ErrorCode.UNREACHABLE
    retryable = True


class BackendTimeout(FlagError):
    code = ErrorCode.TIMEOUT
    retryable = True


class TokenRejected(FlagError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(FlagError):
    code = ErrorCode.FORBIDDEN


class FlagNotFound(FlagError):
    code = ErrorCode.NOT_FOUND


class Conflict(FlagError):
    code = ErrorCode.CONFLICT
    retryable = True


class ServerError(FlagError):
    code = ErrorCode.SERVER_ERROR
    retryable = True


class InvalidValue(FlagError):
    code = ErrorCode.INVALID_VALUE


class ConfigError(FlagError):
    code = ErrorCode.INVALID_CONFIG


class UnsafeChange(FlagError):
    """The change would do more than asked (e.g. make a backend add a 100% rollout)."""

    code = ErrorCode.UNSAFE_CHANGE


class Unsupported(FlagError):
    code = ErrorCode.UNSUPPORTED


class NotAllowed(FlagError):
    """The operator's role does not allow the action (see app/access)."""

    code = ErrorCode.NOT_ALLOWED


class BadResponse(FlagError):
    """The service answered, but not with what its API promises (an HTML page from a proxy,
    JSON of another shape): whether a write was applied is unknown until read back."""

    code = ErrorCode.BAD_RESPONSE


@dataclass(frozen=True)
class EnvironmentState:
    """One flag in one environment, as the backend serves it."""

    name: str
    enabled: bool
    rollout_percentage: float | None = None  # share served the canary/on variant, 0-100
    variant: str | None = None  # the variant served to everyone, None when split or n/a
    has_strategy: bool = True  # False: turning it on would let the backend choose for us
    split: dict[str, float] | None = None  # variant -> % when traffic is split by a rollout


@dataclass(frozen=True)
class FlagState:
    key: str
    variants: dict[str, Any]
    environments: dict[str, EnvironmentState]
    value_type: str = "boolean"  # boolean | string | number | object

    def environment(self, name: str) -> EnvironmentState:
        try:
            return self.environments[name]
        except KeyError:
            raise FlagNotFound(f"flag {self.key} has no environment {name}") from None


@dataclass(frozen=True)
class HistoryEntry:
    """One change from a backend's own history (event log, audit log, history file)."""

    timestamp: datetime  # naive UTC
    flag: str
    environment: str | None
    change: str  # short machine word: enabled, disabled, rollout, variant, ...
    before: str | None
    after: str | None
    author: str | None
    description: str | None
    entry_id: str


@dataclass(frozen=True)
class Change:
    """What an action asks of one flag in one environment (only the fields set change)."""

    enabled: bool | None = None
    rollout_percentage: float | None = None
    variant: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ActionResult:
    outcome: Outcome
    action: str
    feature: str
    flag: str
    environment: str
    backend: str
    before: dict[str, Any]
    after: dict[str, Any]
    message: str
    action_id: str
    latency_ms: int = 0
    operator: str | None = None
    reason: str | None = None
    incident_id: str | None = None
    error_code: str | None = None
    changed: bool = True  # False when the flag already was in the asked state
    extra: dict[str, Any] = field(default_factory=dict)
    operator_role: str | None = None  # the operator's role (viewer/responder/admin) if known

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED

    def cli_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "flag": self.flag,
            "before": self.before,
            "after": self.after,
            "message": self.message,
        }


@runtime_checkable
class FlagBackend(Protocol):
    """The one interface pages, actions and the CLI use; pick one through the registry."""

    name: str  # backend kind, e.g. "flagd-file"

    def describe(self) -> str:
        """Where the flags live, for messages: a path or a URL, never a token."""
        ...

    def read(self, flag: str) -> FlagState: ...

    def set_enabled(self, flag: str, environment: str, enabled: bool, *, comment: str = "") -> None: ...

    def set_rollout(
        self, flag: str, environment: str, percentage: float, variant: str, *, comment: str = ""
    ) -> None:
        """Serve `variant` to `percentage` % and the other variant(s) to the rest."""
        ...

    def set_variant(self, flag: str, environment: str, variant: str, *, comment: str = "") -> None:
        """Serve `variant` to everyone in the environment."""
        ...

    def history(self, since: datetime | None = None) -> list[HistoryEntry]: ...


def validate_percentage(value: object) -> float:
    """A rollout percentage 0-100, or InvalidValue with the value in the message."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidValue(f"rollout {value} is not a percentage") from None
    if not 0 <= number <= 100 or number != number:
        raise InvalidValue(f"rollout {value} is not a percentage")
    return int(number) if number.is_integer() else number  # type: ignore[return-value]
