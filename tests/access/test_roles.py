"""Roles are checked in the logic layer: a viewer calling the action code is refused and
the refusal is on the audit trail; incidents, messages and uploads refuse a role that may
not write; the audit trail and incident events record who acted and with which role."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from app.access.identity import Role, Source
from app.access.roles import AccessDenied, AccessError, load_access
from app.cli import main
from app.incidents.log import IncidentError, IncidentLog
from app.ingest.uploads import load_files, save_upload
from app.rollback import actions
from app.storage import trail
from app.storage.store import Store

VIEWER = {"email": "vic@example.com", "name": "Vic Viewer", "sub": "v1"}
RESPONDER = {"email": "ana@example.com", "name": "Ana Responder", "sub": "a1"}


def person(data_dir: Path, claims: dict):
    return load_access(data_dir).signed_in(claims)


def served_state(data_dir: Path, key: str) -> str:
    return json.loads((data_dir / "flags.json").read_text())["flags"][key]["state"]


def test_roles_come_from_email_groups_and_the_default(flag_dir: Path):
    access = load_access(flag_dir)
    assert access.role_for(VIEWER) is Role.VIEWER
    assert access.role_for({"email": "ANA@example.com"}) is Role.RESPONDER  # case-insensitive
    assert access.role_for({"email": "x@y", "groups": ["incident-responders"]}) is Role.RESPONDER
    assert access.role_for({"email": "root@example.com", "groups": ["incident-responders"]}) is Role.ADMIN
    assert load_access(flag_dir.parent / "no-such-dir").role_for(RESPONDER) is Role.VIEWER


def test_a_viewer_calling_the_action_code_is_refused_and_audited(flag_dir: Path):
    viewer = person(flag_dir, VIEWER)
    result = actions.execute(flag_dir, "support-reply", "kill", actor=viewer, reason="try")
    assert result.outcome == "failed" and result.error_code == "not_allowed"
    assert result.message == ("vic@example.com is a viewer: may not act on a flag (needs responder)")
    assert served_state(flag_dir, "support-reply-enabled") == "ENABLED"
    [entry] = trail.entries(flag_dir)
    assert (entry.operator, entry.operator_role, entry.outcome, entry.action) == (
        "vic@example.com",
        "viewer",
        "failed",
        "kill",
    )


def test_a_responder_acts_and_the_trail_records_the_identity_and_role(flag_dir: Path):
    responder = person(flag_dir, RESPONDER)
    result = actions.execute(
        flag_dir, "support-reply", "kill", actor=responder, operator="typed-name-is-ignored"
    )
    assert result.verified and served_state(flag_dir, "support-reply-enabled") == "DISABLED"
    [entry] = trail.entries(flag_dir)
    assert (entry.operator, entry.operator_role) == ("ana@example.com", "responder")
    assert entry.as_dict()["operator_role"] == "responder"


def test_incident_writes_check_the_role_and_record_the_identity(flag_dir: Path):
    viewer, responder = person(flag_dir, VIEWER), person(flag_dir, RESPONDER)
    with pytest.raises(IncidentError, match="vic@example.com is a viewer: may not change an incident"):
        IncidentLog(flag_dir, viewer).open("checkout slow", ["support-reply"])
    incident = IncidentLog(flag_dir, responder).open("checkout slow", ["support-reply"], actor="bob")
    with pytest.raises(IncidentError, match="is a viewer"):
        IncidentLog(flag_dir, viewer).add_note(incident.id, "I was here")
    IncidentLog(flag_dir, responder).set_section(incident.id, "summary", "Prompt v8 regressed.")
    events = IncidentLog(flag_dir).get(incident.id).events
    assert [(e.kind, e.actor) for e in events] == [
        ("opened", "ana@example.com (responder)"),
        ("section", "ana@example.com (responder)"),
    ]


def test_a_viewer_cannot_send_an_incident_message(flag_dir: Path):
    from app.incidents import notify

    incident = IncidentLog(flag_dir).open("x", ["support-reply"])
    template = notify.Template("t", "T", "text")
    with pytest.raises(IncidentError, match="may not send an incident message"):
        notify.send(flag_dir, incident, "incidents", template, "hello", identity=person(flag_dir, VIEWER))
    assert [e.kind for e in IncidentLog(flag_dir).get(incident.id).events] == ["opened"]


def test_uploads_and_loads_need_the_admin_role(flag_dir: Path, tmp_path: Path):
    responder, admin = person(flag_dir, RESPONDER), person(flag_dir, {"email": "root@example.com"})
    line = b'{"timestamp": "2026-03-02T10:00:00Z", "feature": "chat"}\n'
    with pytest.raises(AccessDenied, match="may not load or upload data"):
        save_upload(flag_dir, responder, "a.jsonl", line)
    assert not (flag_dir / "uploads").exists()
    source = tmp_path / "b.jsonl"
    source.write_bytes(line)
    with pytest.raises(AccessDenied):
        load_files(Store(flag_dir), responder, [str(source)])
    saved = save_upload(flag_dir, admin, "../../a.jsonl", line)
    assert saved == flag_dir / "uploads" / "a.jsonl"
    assert load_files(Store(flag_dir), admin, [str(saved)], whole=[str(saved)]).loaded == 1


def test_the_cli_records_the_os_user_or_the_actor(flag_dir: Path, capsys):
    assert main(["flags", "kill", "support-reply", "--yes", "--data-dir", str(flag_dir)]) == 0
    assert (
        main(
            [
                "flags",
                "resume",
                "support-reply",
                "--yes",
                "--actor",
                "oncall-bot",
                "--data-dir",
                str(flag_dir),
            ]
        )
        == 0
    )
    entries = trail.entries(flag_dir)
    assert [(e.operator, e.operator_role) for e in entries] == [
        ("oncall-bot", "admin"),
        (getpass.getuser(), "admin"),
    ]


def test_the_cli_is_refused_when_access_yaml_makes_local_a_viewer(flag_dir: Path, capsys):
    (flag_dir / "access.yaml").write_text("local_role: viewer\n")
    code = main(["flags", "kill", "support-reply", "--yes", "--json", "--data-dir", str(flag_dir)])
    message = json.loads(capsys.readouterr().out)["message"]
    assert code == 1 and "is a viewer: may not act on a flag" in message
    assert trail.entries(flag_dir)[0].operator_role == "viewer"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "default_role: boss\n",
            "line 1: default_role: expected a role: one of viewer, responder, admin, got 'boss'",
        ),
        ("users: [a]\n", "line 1: users: expected a mapping of email -> role, got a list"),
        (
            "users:\n  ana@x: owner\n",
            "line 2: users.ana@x: expected a role: one of viewer, responder, admin, got 'owner'",
        ),
        (
            "local_role: admin\nroles: {}\n",
            "line 2: roles: unknown key; expected one of default_role, "
            "groups, groups_claim, local_role, users",
        ),
        (
            "groups_claim: 3\n",
            "line 1: groups_claim: expected the name of an ID-token claim, like groups, got 3",
        ),
        (
            "users:\n  Ana@x: admin\n  ana@X: viewer\n",
            "line 3: users.ana@X: the same email as Ana@x (line 2); emails are compared without case",
        ),
        ("users: {a: [\n", "line 2: not valid YAML"),
    ],
)
def test_an_invalid_access_yaml_names_the_file_line_and_key(flag_dir: Path, text: str, expected: str):
    (flag_dir / "access.yaml").write_text(text)
    with pytest.raises(AccessError) as caught:
        load_access(flag_dir)
    assert str(caught.value).startswith(f"{flag_dir / 'access.yaml'}: {expected}")
    assert len(caught.value.problems) == 1


def test_every_problem_of_access_yaml_is_listed(flag_dir: Path):
    (flag_dir / "access.yaml").write_text(
        "default_role: boss\nusers:\n  ana@x: owner\ngroups:\n  ops: responder\n"
    )
    with pytest.raises(AccessError) as caught:
        load_access(flag_dir)
    assert [(p.line, p.key) for p in caught.value.problems] == [(1, "default_role"), (3, "users.ana@x")]


def test_an_empty_access_yaml_means_the_defaults(flag_dir: Path):
    (flag_dir / "access.yaml").write_text("# roles come later\n")
    access = load_access(flag_dir)
    assert (access.default_role, access.local_role, access.users) == (Role.VIEWER, Role.ADMIN, {})


def test_signed_in_identity_uses_email_and_name_claims(flag_dir: Path):
    who = person(flag_dir, RESPONDER)
    assert (who.name, who.display_name, who.role, who.source) == (
        "ana@example.com",
        "Ana Responder",
        Role.RESPONDER,
        Source.SIGNED_IN,
    )
    assert person(flag_dir, {"sub": "abc"}).name == "sub:abc"


def test_the_post_mortem_names_who_acted_with_their_role(flag_dir: Path):
    from app.incidents import postmortem

    responder = person(flag_dir, RESPONDER)
    incident = IncidentLog(flag_dir, responder).open("support-reply errors", ["support-reply"])
    IncidentLog(flag_dir, responder).add_note(incident.id, "killing the feature")
    assert actions.execute(
        flag_dir, "support-reply", "kill", actor=responder, incident_id=incident.id
    ).verified
    text = postmortem.export(flag_dir, incident.id)
    actions_taken = text.split("## Actions taken", 1)[1].split("##", 1)[0]
    [row] = [line for line in actions_taken.splitlines() if "kill support-reply-enabled" in line]
    assert row.rstrip(" |").endswith("ana@example.com (responder)")
    events = IncidentLog(flag_dir).get(incident.id).events
    assert {e.actor for e in events if e.kind in ("opened", "note")} == {"ana@example.com (responder)"}


def test_rules_built_in_code_are_checked_by_the_same_schema(tmp_path: Path):
    from app.access.roles import parse_access

    access = parse_access({"users": {"Ana@Example.com": "responder"}}, tmp_path / "access.yaml")
    assert access.role_for({"email": "ana@example.com"}) is Role.RESPONDER
    with pytest.raises(AccessError) as caught:
        parse_access({"users": {"ana@x": "owner"}}, tmp_path / "access.yaml")
    assert str(caught.value) == (
        f"{tmp_path / 'access.yaml'}: users.ana@x: expected a role: one of "
        "viewer, responder, admin, got 'owner'"
    )
