"""The project's flagd model agrees with the official schema and catches what it misses."""

from __future__ import annotations

import json

import pytest
from flag_components import FLAGD_EXAMPLES, flagd_validator

from app.demo.flags import demo_flag_document
from app.flags import flagd_format
from app.flags.base import InvalidValue

# A flagd-daemon file (flags as an array): valid for the daemon, not for providers.
DAEMON_ONLY = {"example.flagdimport.array.json"}


def _examples(kind: str) -> list:
    return sorted((FLAGD_EXAMPLES / kind).glob("*.json"))


@pytest.mark.parametrize("path", _examples("valid"), ids=lambda p: p.name)
def test_valid_examples_pass_both_checks(path) -> None:
    doc = json.loads(path.read_text())
    if path.name in DAEMON_ONLY:
        with pytest.raises(InvalidValue):
            flagd_format.validate_document(doc)
        return
    assert not list(flagd_validator().iter_errors(doc))
    flagd_format.validate_document(doc)


@pytest.mark.parametrize("path", _examples("invalid"), ids=lambda p: p.name)
def test_invalid_examples_fail_both_checks(path) -> None:
    doc = json.loads(path.read_text())
    assert list(flagd_validator().iter_errors(doc))
    with pytest.raises(InvalidValue):
        flagd_format.validate_document(doc)


def _flag(**over) -> dict:
    return {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on", **over}


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        (_flag(defaultVariant="maybe"), "defaultVariant 'maybe'"),
        (_flag(targeting={"fractional": [["on", 10], ["gone", 90]]}), "unknown variant"),
        (_flag(targeting={"fractional": [["on", 0], ["off", 0]]}), "sum to 0"),
        (_flag(targeting={"fractional": [["on", 10.5], ["off", 89.5]]}), "integer"),
        (_flag(colour="red"), "unknown keys"),
    ],
)
def test_what_the_official_schema_misses_is_refused(flag: dict, words: str) -> None:
    doc = {"flags": {"f": flag}}
    with pytest.raises(InvalidValue, match=words):
        flagd_format.validate_document(doc)


def test_the_official_schema_misses_a_default_variant_that_names_nothing() -> None:
    doc = {"flags": {"f": _flag(defaultVariant="maybe")}}
    assert not list(flagd_validator().iter_errors(doc))


def test_a_flag_keeps_its_type_between_versions() -> None:
    before = {"flags": {"f": _flag()}}
    after = {"flags": {"f": {"state": "ENABLED", "variants": {"a": "x"}, "defaultVariant": "a"}}}
    with pytest.raises(InvalidValue, match="change type from boolean to string"):
        flagd_format.validate_document(after, previous=before)


def test_a_file_without_flags_is_refused() -> None:
    with pytest.raises(InvalidValue, match="every flag disappears"):
        flagd_format.validate_document({"metadata": {}})


def test_rollout_targeting_reads_back_as_the_percentage() -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"c": "new", "k": "old"},
        "defaultVariant": "k",
        "targeting": flagd_format.rollout_targeting("c", 2.5, "k"),
    }
    flagd_format.validate_document({"flags": {"f": flag}})
    assert flagd_format.served_percentage(flag, "c") == 2.5


def test_the_demo_document_is_valid_both_ways() -> None:
    doc = demo_flag_document()
    assert not list(flagd_validator().iter_errors(doc))
    flagd_format.validate_document(doc)


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        (_flag(state="ON"), "flags.f.state: expected one of ENABLED, DISABLED, got 'ON'"),
        (_flag(variants={"on": [True], "off": [False]}), "flags.f.variants.on: expected"),
        (_flag(metadata={"owner": ["a"]}), "flags.f.metadata.owner: expected"),
    ],
)
def test_the_shape_is_checked_by_the_official_schema_naming_the_key(flag: dict, words: str) -> None:
    with pytest.raises(InvalidValue, match="breaks the flagd schema") as caught:
        flagd_format.validate_document({"flags": {"f": flag}})
    assert words in str(caught.value)


def test_variants_of_two_types_are_named_as_such() -> None:
    doc = {"flags": {"f": _flag(variants={"on": True, "off": "no"})}}
    assert list(flagd_validator().iter_errors(doc))  # the schema refuses it too, less clearly
    with pytest.raises(InvalidValue, match=r"flag f: variants mix types \['boolean', 'string'\]"):
        flagd_format.validate_document(doc)
