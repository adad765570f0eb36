"""The project's own model of the flagd flag-definition format, and its validation.

The official JSON schema checks the shape of a file. It misses what makes a file wrong for
the services that read it, so every write is also checked here: the default variant names a
variant, fractional weights are non-negative integers with a positive sum over known
variants, every variant of a flag has one type, and a flag keeps its type from one version
of the file to the next. A file without a `flags` object is refused: the flagd provider
would drop every flag and callers would silently get their code defaults.
"""

from __future__ import annotations

from typing import Any

from app.flags.base import InvalidValue

TOP_LEVEL_KEYS = {"$schema", "flags", "$evaluators", "metadata"}
FLAG_KEYS = {"state", "variants", "defaultVariant", "targeting", "metadata"}
STATES = {"ENABLED", "DISABLED"}
MAX_TOTAL_WEIGHT = 2_147_483_647
# JSONLogic operators plus flagd's own; a targeting rule using anything else is refused.
OPERATORS = {
    "var", "missing", "missing_some", "if", "?:", "==", "===", "!=", "!==", "!", "!!", "or",
    "and", ">", ">=", "<", "<=", "max", "min", "+", "-", "*", "/", "%", "map", "reduce",
    "filter", "all", "none", "some", "merge", "in", "cat", "substr", "log",
    "fractional", "sem_ver", "starts_with", "ends_with", "$ref",
}


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
    """Raise InvalidValue naming the flag and the problem, or return when `doc` is sound."""
    if not isinstance(doc, dict):
        raise InvalidValue("flag file must be a JSON object")
    unknown = set(doc) - TOP_LEVEL_KEYS
    if unknown:
        raise InvalidValue(f"flag file has unknown top-level keys: {sorted(unknown)}")
    _check_metadata("flag file", doc.get("metadata", {}))
    flags = doc.get("flags")
    if not isinstance(flags, dict):
        raise InvalidValue("flag file needs a `flags` object (without it every flag disappears)")
    for key, flag in flags.items():
        validate_flag(key, flag)
    if previous:
        for key, old in previous.get("flags", {}).items():
            new = flags.get(key)
            if new is not None and flag_type(new) != flag_type(old):
                raise InvalidValue(
                    f"flag {key} would change type from {flag_type(old)} to {flag_type(new)}"
                )


def validate_flag(key: str, flag: Any) -> None:
    if not key:
        raise InvalidValue("flag with an empty key")
    if not isinstance(flag, dict):
        raise InvalidValue(f"flag {key} must be an object")
    unknown = set(flag) - FLAG_KEYS
    if unknown:
        raise InvalidValue(f"flag {key} has unknown keys: {sorted(unknown)}")
    if flag.get("state") not in STATES:
        raise InvalidValue(f"flag {key}: state must be ENABLED or DISABLED, "
                           f"not {str(flag.get('state'))[:40]!r}")
    variants = flag.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise InvalidValue(f"flag {key} needs at least one variant")
    kinds = {value_type(v) for v in variants.values()}
    if len(kinds) != 1 or not kinds <= {"boolean", "string", "number", "object"}:
        raise InvalidValue(f"flag {key}: variants mix types {sorted(kinds)}")
    default = flag.get("defaultVariant")
    if default is not None and default not in variants:
        raise InvalidValue(f"flag {key}: defaultVariant {default!r} is not one of its variants")
    _check_metadata(f"flag {key}", flag.get("metadata", {}))
    if "targeting" in flag:
        _check_operators(key, flag["targeting"])
        for rule in _fractional_rules(flag["targeting"]):
            validate_fractional(key, rule, variants)


def _check_metadata(where: str, metadata: Any) -> None:
    if not isinstance(metadata, dict) or any(
        value_type(v) not in {"string", "number", "boolean"} for v in metadata.values()
    ):
        raise InvalidValue(f"{where}: metadata values must be strings, numbers or booleans")


def _check_operators(key: str, node: Any) -> None:
    if isinstance(node, dict):
        for name, arg in node.items():
            if name not in OPERATORS:
                raise InvalidValue(f"flag {key}: targeting uses unknown operator {name!r}")
            _check_operators(key, arg)
    elif isinstance(node, list):
        for item in node:
            _check_operators(key, item)


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
