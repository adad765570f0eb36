"""The JSON Schemas shipped with the package, and their errors said as a person would act on them.

One schema per file kind lives in `app/configuration/schemas/<kind>.json` (JSON Schema
2020-12). A schema may carry an `expected` annotation on any property: the phrase used in
the error ("expected an http(s) URL") in place of the generated one. The flagd file is
checked with the official flagd schema (draft-07), vendored in `schemas/flagd/`.

Lists of names that the code owns (metrics, change kinds, canonical fields, flag roles) are
not copied into the schemas: a schema declares each under `$defs` with `"vocabulary": true`,
and the room that reads the file passes the names (`vocabularies={"metric": METRICS}`),
which become an `enum` there; a validator asked for without them is refused. The code stays
the one place where a name is defined. A property marked `"secret": true` (a token, a webhook
URL) is reported without its value.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from app.configuration.problems import KeyPath

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
KINDS: tuple[str, ...] = (
    "playbook",
    "flags",
    "detection",
    "notify",
    "mapping",
    "changes",
    "lake",
    "slos",
    "access",
)
FLAGD = "flagd"

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "nothing",
}


def schema(kind: str) -> dict[str, Any]:
    """The schema document of a file kind (or of the flagd flag file)."""
    if kind == FLAGD:
        return json.loads((SCHEMAS_DIR / "flagd" / "flags.json").read_text())
    if kind not in KINDS:
        raise KeyError(f"no schema for {kind!r}; known: {', '.join((*KINDS, FLAGD))}")
    return json.loads((SCHEMAS_DIR / f"{kind}.json").read_text())


Vocabularies = dict[str, tuple[str, ...]]


def validator(kind: str, vocabularies: Vocabularies | None = None) -> Draft7Validator | Draft202012Validator:
    """The validator of a file kind, with the named `$defs` narrowed to the given names."""
    frozen = tuple(sorted((k, tuple(v)) for k, v in (vocabularies or {}).items()))
    return _validator(kind, frozen)


@cache
def _validator(
    kind: str, vocabularies: tuple[tuple[str, tuple[str, ...]], ...]
) -> Draft7Validator | Draft202012Validator:
    if kind == FLAGD:
        targeting = json.loads((SCHEMAS_DIR / "flagd" / "targeting.json").read_text())
        resource = Resource.from_contents(targeting, default_specification=DRAFT7)
        registry = Registry().with_resources(
            [
                ("./targeting.json", resource),
                ("targeting.json", resource),
                ("https://flagd.dev/schema/v0/targeting.json", resource),
            ]
        )
        return Draft7Validator(schema(FLAGD), registry=registry)
    doc = schema(kind)
    defs = doc.setdefault("$defs", {})
    for name, names in vocabularies:
        if not defs.get(name, {}).get("vocabulary"):
            raise KeyError(f"schema {kind} has no $defs/{name} to fill with names")
        defs[name] = {**defs[name], "enum": list(names)}
    unfilled = sorted(n for n, d in defs.items() if d.get("vocabulary") and "enum" not in d)
    if unfilled:  # a check that would let any name through is a bug of the caller
        raise KeyError(f"schema {kind} needs the names of {', '.join(unfilled)} (pass vocabularies={{...}})")
    return Draft202012Validator(doc)


def violations(data: Any, kind: str, vocabularies: Vocabularies | None = None) -> list[tuple[KeyPath, str]]:
    """Every place where `data` breaks the schema of `kind`, as (key path, what was expected),
    each once."""
    found: list[tuple[KeyPath, str]] = []
    for error in validator(kind, vocabularies).iter_errors(data):
        found.extend(explain(error))
    return list(dict.fromkeys(found))


def explain(error: ValidationError, hint: bool = True) -> list[tuple[KeyPath, str]]:
    """One schema error as (key path, message); an unknown or missing key names that key."""
    at: KeyPath = tuple(error.absolute_path)
    sub = error.schema if isinstance(error.schema, dict) else {}
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        props = sub.get("properties", {})
        missing = [k for k in value if isinstance(instance, dict) and k not in instance]
        out = []
        for k in missing:
            said = _expected(props.get(k, {}))
            if not said and "properties" not in sub:  # a conditional `then`: its phrase says why
                said = str(sub.get("expected") or "")
            out.append(((*at, k), f"missing; expected {said}" if said else "missing; this key is required"))
        return out
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(sub.get("properties", {}))
        extra = sorted(
            k
            for k in instance
            if k not in sub.get("properties", {})
            and not _matches_pattern(k, sub.get("patternProperties", {}))
        )
        known = f"; expected one of {', '.join(allowed)}" if allowed and hint else ""
        return [((*at, k), f"unknown key{known}") for k in extra]
    if "propertyNames" in error.absolute_schema_path:  # a key, not a value, is wrong
        return [((*at, instance), f"unknown name; expected {_expected(sub, kind, value)}")]
    if kind in ("anyOf", "oneOf"):
        return _alternatives(error, at, sub, kind, value, instance)
    got = "" if sub.get("secret") else _got(instance)  # a token or webhook URL is never shown
    return [(at, f"expected {_expected(sub, kind, value)}{got}")]


def _alternatives(
    error: ValidationError, at: KeyPath, sub: dict[str, Any], kind: str, value: Any, instance: Any
) -> list[tuple[KeyPath, str]]:
    """A value that fits none of `oneOf`/`anyOf`: explain the alternative that came closest,
    i.e. whose type fits the value and that has the fewest errors."""
    branches: dict[Any, list[ValidationError]] = {}
    for e in error.context or ():
        branches.setdefault(e.relative_schema_path[0], []).append(e)
    fitting = {
        b: errs
        for b, errs in branches.items()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    }
    if fitting and not sub.get("expected"):
        fewest = min(len(errs) for errs in fitting.values())
        closest = [errs for errs in fitting.values() if len(errs) == fewest]
        if len(closest) == 1:
            return [found for e in closest[0] for found in explain(e)]
        return explain(best_match([e for errs in closest for e in errs]), hint=False)
    if fitting and not all(e.validator == "required" for errs in fitting.values() for e in errs):
        return explain(best_match([e for errs in fitting.values() for e in errs]))
    if sub.get("expected"):
        got = "" if isinstance(instance, dict | list) else _got(instance)
        return [(at, f"expected {sub['expected']}{got}")]
    kinds = sorted(
        {
            k
            for errs in branches.values()
            for e in errs
            if e.validator == "type"
            for k in (e.validator_value if isinstance(e.validator_value, list) else [e.validator_value])
        }
    )
    what = " or ".join(_TYPE_WORDS.get(k, k) for k in kinds) or "another value"
    return [(at, f"expected {what}{_got(instance)}")]


def _expected(sub: dict[str, Any], kind: str | None = None, value: Any = None) -> str:
    said = str(sub.get("expected") or "")
    if kind == "enum":  # the names are the useful part; keep the phrase in front of them
        names = "one of " + ", ".join(str(v) for v in value)
        return f"{said}: {names}" if said else names
    if said or kind is None:
        return said
    if kind == "const":
        return repr(value)
    if kind == "type" and any(
        k in sub for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
    ):
        return _range(sub)
    if kind == "type":
        kinds = value if isinstance(value, list) else [value]
        return " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return _range(sub)
    if kind == "minItems":
        return f"at least {value} item{'s' if value != 1 else ''}"
    if kind == "minLength":
        return "non-empty text" if value == 1 else f"text of at least {value} characters"
    if kind == "minProperties":
        return f"at least {value} entr{'ies' if value != 1 else 'y'}"
    if kind == "pattern":
        return f"text matching {value}"
    return f"a value allowed by `{kind}: {json.dumps(value)}`"


def _range(sub: dict[str, Any]) -> str:
    parts = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in sub:
            parts.append(f"{sign} {sub[key]}")
    what = "a whole number" if sub.get("type") == "integer" else "a number"
    return f"{what} {' and '.join(parts)}"


def _got(instance: Any) -> str:
    if isinstance(instance, dict):
        return ", got a mapping" if instance else ", got an empty mapping"
    if isinstance(instance, list):
        return ", got a list" if instance else ", got an empty list"
    text = repr(instance)
    return f", got {text if len(text) <= 60 else text[:57] + '...'}"


def _matches_pattern(key: str, patterns: dict[str, Any]) -> bool:
    return any(re.search(p, key) for p in patterns)
