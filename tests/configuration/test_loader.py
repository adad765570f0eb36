"""The one loader of configuration files: YAML with the line of every key, a JSON Schema per
file kind, and errors that name the file, the line and the key for every kind of file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from app.access.roles import AccessError, load_access
from app.changes.declared import ChangeFileError, load_declared
from app.configuration import KINDS, ConfigFileError, load_yaml, parse_yaml
from app.configuration.validation import SCHEMAS_DIR, schema
from app.detection.thresholds import ThresholdsError, load_thresholds
from app.flags.base import ConfigError
from app.flags.config import load_config
from app.incidents.notify import NotifyConfigError, load_webhooks
from app.incidents.playbooks import PlaybookError, load_playbook
from app.ingest.mapping import MappingError, load_mapping
from app.review.slos import SloConfigError, load_slos

ROOT = Path(__file__).resolve().parents[2]


def test_every_key_and_list_item_keeps_its_line(tmp_path: Path):
    path = tmp_path / "x.yaml"
    path.write_text("# a comment\nouter:\n  inner: 1\n  items:\n    - a\n\n    - {b: 2}\n")
    doc = parse_yaml(path.read_bytes(), path)
    assert doc.data == {"outer": {"inner": 1, "items": ["a", {"b": 2}]}}
    assert doc.line(("outer",)) == 2
    assert doc.line(("outer", "inner")) == 3
    assert doc.line(("outer", "items", 0)) == 5
    assert doc.line(("outer", "items", 1, "b")) == 7
    assert doc.line(("outer", "missing", "deeper")) == 2  # the nearest ancestor in the file


def test_a_byte_order_mark_is_not_content(tmp_path: Path):
    path = tmp_path / "mapping.yaml"
    path.write_bytes(b"\xef\xbb\xbffields:\n  model: Model\n")
    assert load_mapping(path).fields == {"model": "Model"}


def _bad_utf8(tmp_path: Path, name: str, text: str) -> Path:
    """The file `text` with a Latin-1 byte (0xe9) in place of the marker on line 3."""
    path = tmp_path / name
    path.write_bytes(text.encode().replace(b"@", b"\xe9"))
    return path


# Each kind of file with a bad byte on line 3, the loader that reads it and its error class.
LOADERS: list[tuple[str, str, Callable[[Path], object], type[Exception]]] = [
    ("mapping.yaml", "fields:\n  model: Model\n  feature: \"'caf@'\"\n", load_mapping, MappingError),
    ("pb.yaml", "id: x\ntitle: T\ndescription: caf@\nsteps: []\n", load_playbook, PlaybookError),
    (
        "notify.yaml",
        "webhooks:\n  x:\n    url: http://caf@\n",
        lambda p: load_webhooks(p.parent),
        NotifyConfigError,
    ),
    (
        "flags.yaml",
        "backends:\n  local:\n    type: flagd-f@le\n",
        lambda p: load_config(p.parent),
        ConfigError,
    ),
    (
        "detection.yaml",
        "significance: 0.01\nscope:\n  coverage: 0.@\n",
        lambda p: load_thresholds(p.parent),
        ThresholdsError,
    ),
    (
        "changes.yaml",
        "changes:\n  - timestamp: 2026-11-20T14:00:00Z\n    feature: caf@\n    kind: prompt\n",
        load_declared,
        ChangeFileError,
    ),
    (
        "slos.yaml",
        "features:\n  chat:\n    objectives: [{name: caf@, sli: feedback, objective: 0.9}]\n",
        lambda p: load_slos(p.parent),
        SloConfigError,
    ),
    (
        "access.yaml",
        "default_role: viewer\nusers:\n  caf@@example.com: admin\n",
        lambda p: load_access(p.parent),
        AccessError,
    ),
]


@pytest.mark.parametrize(("name", "text", "load", "error"), LOADERS, ids=[c[0] for c in LOADERS])
def test_bytes_that_are_not_utf8_are_an_error_naming_the_file_and_line(tmp_path, name, text, load, error):
    path = _bad_utf8(tmp_path, name, text)
    with pytest.raises(error) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line 3: byte 0xe9 at column ")
    assert "save the file as UTF-8" in message


def test_a_control_character_is_an_error_naming_the_line(tmp_path: Path):
    path = tmp_path / "mapping.yaml"
    path.write_text('fields:\n  model: Model\n  feature: "a\x07b"\n')
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert str(caught.value) == f"{path}: line 3: character U+0007 is not allowed in YAML; remove it"


def test_a_key_written_twice_is_refused_not_silently_overwritten(tmp_path: Path):
    path = tmp_path / "detection.yaml"
    path.write_text("significance: 0.01\nlookback_days: 7\nsignificance: 0.2\n")
    with pytest.raises(ThresholdsError) as caught:
        load_thresholds(tmp_path)
    assert str(caught.value) == (
        f"{path}: line 3: significance: written twice in one mapping (first on line 1); keep one"
    )


def test_every_problem_of_a_file_is_listed_in_file_order(tmp_path: Path):
    path = tmp_path / "detection.yaml"
    path.write_text("significance: 2\nscope:\n  coverage: 0.1\ncolour: red\n")
    with pytest.raises(ThresholdsError) as caught:
        load_thresholds(tmp_path)
    assert [(p.line, p.key) for p in caught.value.problems] == [
        (1, "significance"),
        (3, "scope.coverage"),
        (4, "colour"),
    ]


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path):
    with pytest.raises(ConfigFileError) as caught:
        load_yaml(tmp_path / "absent.yaml", "mapping")
    assert str(caught.value).startswith(f"{tmp_path / 'absent.yaml'}: cannot read the file")


@pytest.mark.parametrize("kind", KINDS)
def test_each_shipped_schema_is_a_valid_json_schema(kind: str):
    Draft202012Validator.check_schema(schema(kind))


def test_the_vendored_flagd_schema_is_the_official_one_unchanged():
    # open-feature/flagd-schemas @ 741a7f8e7dc3, json/flags.json and json/targeting.json
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (SCHEMAS_DIR / "flagd").glob("*.json")
    }
    assert digests == {
        "flags.json": "a9b065cc3e140d10a5e139a3f2bbd2f24d4fe8a728ce824a5f2a1231ed60680b",
        "targeting.json": "4194aeab5611f80ce8650a10bed5b18483754587bfb2d7ef093e75a0609a2e75",
    }
    Draft7Validator.check_schema(json.loads((SCHEMAS_DIR / "flagd" / "flags.json").read_text()))


def test_the_configuration_reference_lists_every_schema():
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for kind in KINDS:
        assert f"app/configuration/schemas/{kind}.json" in reference, kind
    assert "app/configuration/schemas/flagd/flags.json" in reference


def test_only_the_loader_parses_yaml():
    app = ROOT / "app"
    readers = sorted(
        str(p.relative_to(ROOT))
        for p in app.rglob("*.py")
        if "configuration" not in p.relative_to(app).parts[:1]
        and any(
            call in p.read_text()
            for call in ("yaml.safe_load", "yaml.load(", "yaml.compose", "yaml.SafeLoader", "yaml.full_load")
        )
    )
    assert readers == [], f"YAML read outside app/configuration: {readers}"


def test_a_schema_whose_names_come_from_the_code_cannot_be_used_without_them(tmp_path: Path):
    path = tmp_path / "mapping.yaml"
    path.write_text("fields:\n  latency: ms\n")
    with pytest.raises(KeyError, match="needs the names of field"):
        load_yaml(path, "mapping")
    with pytest.raises(ConfigFileError, match="fields.latency: unknown name"):
        load_yaml(path, "mapping", vocabularies={"field": ("model",)})
