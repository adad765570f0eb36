"""The project's own model of the flagd flag-definition format, and its validation.

The official JSON schema (vendored in the package) checks the shape of a file: states,
variants of one type, metadata, targeting operators. It misses what makes a file wrong for
the services that read it, so every write is also checked here: no unknown keys in a flag,
the default variant names a variant, fractional weights are non-negative integers with a
positive sum over known variants, and a flag keeps its type from one version of the file
to the next. A file without a `flags` object is refused: the flagd provider
would drop every flag and callers would silently get their code defaults.
"""

from __future__ import annotations

from typing import Any

from app.configuration import FLAGD, key_label, violations
from app.flags.base import InvalidValue

STATES = {"ENABLED", "DISABLED"}
FLAG_KEYS = {"state", "variants", "defaultVariant", "targeting", "metadata"}
MAX_TOTAL_WEIGHT = 2_147_483_647


def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def flag_type(flag: dict[str, Any]) -> str:
    types = {value_type(v) for v in flag.get("variants", {}).values()}
    return types.pop() if len(types) == 1 else "mixed"


def validate_document(doc: Any, previous: dict[str, Any] | None = None) -> None:
    """Raise InvalidValue naming the flag and the problem, or return when `doc` is sound.

    The meaning checks run first (their messages are the more precise ones), then the shape
    is checked by the official flagd schema vendored in app/configuration/schemas/flagd."""
    if not isinstance(doc, dict) or not isinstance(doc.get("flags"), dict):
        raise InvalidValue("flag file needs a `flags` object (without it every flag disappears)")
    for key, flag in doc["flags"].items():
        validate_flag(key, flag)
    wrong = violations(doc, FLAGD)
    if wrong:
        raise InvalidValue(
            "flag file breaks the flagd schema: "
            + "; ".join(f"{key_label(at)}: {message}" for at, message in wrong)
        )
    if previous:
        for key, old in previous.get("flags", {}).items():
            new = doc["flags"].get(key)
            if new is not None and flag_type(new) != flag_type(old):
                raise InvalidValue(f"flag {key} would change type from {flag_type(old)} to {flag_type(new)}")


def check_state(key: str, flag: Any) -> None:
    """A flag read without the schema (status, the read-back of an action) has a state we
    know: an unknown one is never taken for off."""
    if isinstance(flag, dict) and flag.get("state") not in STATES:
        raise InvalidValue(
            f"flag {key}: state must be ENABLED or DISABLED, not {str(flag.get('state'))[:40]!r}"
        )


def validate_flag(key: str, flag: Any) -> None:
    """The checks of one flag that the official schema does not make (no unknown keys, a
    default variant that names a variant, sound fractional weights) or words less clearly
    (variants of one type: the schema only says which variant breaks which alternative)."""
    if not isinstance(flag, dict):
        return  # the schema reports it
    unknown = set(flag) - FLAG_KEYS
    if unknown:
        raise InvalidValue(f"flag {key} has unknown keys: {sorted(unknown)}")
    variants = flag.get("variants")
    if not isinstance(variants, dict):
        return
    kinds = {value_type(v) for v in variants.values()}
    if len(kinds) > 1:
        raise InvalidValue(f"flag {key}: variants mix types {sorted(kinds)}")
    default = flag.get("defaultVariant")
    if default is not None and default not in variants:
        raise InvalidValue(f"flag {key}: defaultVariant {default!r} is not one of its variants")
    for rule in _fractional_rules(flag.get("targeting")):
        validate_fractional(key, rule, variants)


def _fractional_rules(node: Any) -> list[list[Any]]:
    found: list[list[Any]] = []
    if isinstance(node, dict):
        for name, arg in node.items():
            if name == "fractional" and isinstance(arg, list):
                found.append(arg)
            found.extend(_fractional_rules(arg))
    elif isinstance(node, list):
        for item in node:
            found.extend(_fractional_rules(item))
    return found


def validate_fractional(key: str, args: list[Any], variants: dict[str, Any]) -> None:
    buckets = [a for a in args if isinstance(a, list)]
    if not buckets:
        raise InvalidValue(f"flag {key}: fractional rule has no buckets")
    total = 0
    for bucket in buckets:
        if not 1 <= len(bucket) <= 2 or not isinstance(bucket[0], str):
            raise InvalidValue(f"flag {key}: fractional bucket {bucket!r} is not [variant, weight]")
        name = bucket[0]
        weight = bucket[1] if len(bucket) == 2 else 1
        if name not in variants:
            raise InvalidValue(f"flag {key}: fractional bucket names unknown variant {name!r}")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise InvalidValue(f"flag {key}: fractional weight {weight!r} must be an integer >= 0")
        total += weight
    if total <= 0:
        raise InvalidValue(f"flag {key}: fractional weights sum to 0, nothing would be served")
    if total > MAX_TOTAL_WEIGHT:
        raise InvalidValue(f"flag {key}: fractional weights sum above {MAX_TOTAL_WEIGHT}")


def fractional_split(flag: dict[str, Any]) -> dict[str, int] | None:
    """{variant: weight} when the flag's whole targeting is one fractional rule, else None."""
    targeting = flag.get("targeting")
    if not isinstance(targeting, dict) or set(targeting) != {"fractional"}:
        return None
    buckets = [b for b in targeting["fractional"] if isinstance(b, list)]
    return {b[0]: (b[1] if len(b) == 2 else 1) for b in buckets}


def rollout_targeting(variant: str, percentage: float, other: str) -> dict[str, Any]:
    """A fractional rule serving `variant` to `percentage` % and `other` to the rest."""
    if float(percentage).is_integer():
        weight, total = int(percentage), 100
    else:  # integer weights only: use thousandths of a percent
        weight, total = round(percentage * 1000), 100_000
    return {"fractional": [[variant, weight], [other, total - weight]]}


def served_percentage(flag: dict[str, Any], variant: str) -> float | None:
    """Share (0-100) of evaluations served `variant` by the flag's fractional rule."""
    split = fractional_split(flag)
    if split is None:
        if "targeting" in flag and flag["targeting"]:
            return None  # other targeting: not a rollout we can describe
        return 100.0 if flag.get("defaultVariant") == variant else 0.0
    total = sum(split.values())
    share = 100 * split.get(variant, 0) / total
    return int(share) if float(share).is_integer() else round(share, 3)
