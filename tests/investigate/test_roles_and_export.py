"""Roles decide who may use the SQL console and export; every run is in the query log; an
export never leaves half a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.investigate import querylog
from app.investigate.console import run_sql
from app.investigate.export import ExportError, export_slice
from app.investigate.filters import Filter, Scope
from app.investigate.roles import Actor, PermissionDenied
from app.storage.store import Store

from .conftest import FEATURE, N_V8

VIEWER, RESPONDER, ADMIN = Actor("vic", "viewer"), Actor("rosa", "responder"), Actor("ada", "admin")


def test_the_console_needs_an_admin(known_dir: Path):
    for actor in (VIEWER, RESPONDER):
        with pytest.raises(PermissionDenied, match="needs the admin role"):
            run_sql(known_dir, "SELECT 1", actor=actor)
    assert run_sql(known_dir, "SELECT 1", actor=ADMIN).rows == [(1,)]
    assert run_sql(known_dir, "SELECT 2", actor=None, who="cli-user").rows == [(2,)]
    log = querylog.recent(known_dir)
    assert [(r.actor, r.role, r.outcome) for r in log] == [
        ("cli-user", None, "ok"),
        ("ada", "admin", "ok"),
        ("rosa", "responder", "denied"),
        ("vic", "viewer", "denied"),
    ]


def test_exports_need_a_responder(known_dir: Path, tmp_path: Path):
    store = Store(known_dir)
    scope = Scope(FEATURE, filter=Filter.parse("prompt_version=v8"))
    with pytest.raises(PermissionDenied, match="needs the responder role"):
        export_slice(store, scope, tmp_path / "v.jsonl", actor=VIEWER)
    assert not (tmp_path / "v.jsonl").exists()
    for actor in (RESPONDER, ADMIN):
        out = export_slice(store, scope, tmp_path / f"{actor.name}.jsonl", actor=actor)
        assert out.rows == N_V8
        assert json.loads(out.sidecar.read_text())["exported_by"] == actor.name
    kinds = [(r.kind, r.actor, r.outcome) for r in querylog.recent(known_dir)]
    assert kinds == [("export", "ada", "ok"), ("export", "rosa", "ok"), ("export", "vic", "denied")]


def test_the_query_log_is_append_only(known_dir: Path):
    import sqlite3

    run_sql(known_dir, "SELECT 1", who="x")
    con = sqlite3.connect(known_dir / "ledger.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM investigate_queries")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE investigate_queries SET actor = 'someone else'")
    con.close()


def test_a_failed_export_leaves_the_previous_file_as_it_was(known_dir: Path, tmp_path: Path):
    store = Store(known_dir)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "slice.csv"
    export_slice(store, Scope(FEATURE, filter=Filter.parse("region=eu")), target)
    before, sidecar_before = target.read_bytes(), (out / "slice.csv.json").read_bytes()
    # the sidecar cannot be written (its temporary name is taken by a folder): the export
    # fails after DuckDB wrote the new data
    (out / ".slice.csv.json.partial").mkdir()
    with pytest.raises(IsADirectoryError):
        export_slice(store, Scope(FEATURE, filter=Filter.parse("region=us")), target)
    assert target.read_bytes() == before
    assert (out / "slice.csv.json").read_bytes() == sidecar_before
    assert not (out / ".slice.csv.partial").exists()
    assert querylog.recent(known_dir)[0].outcome == "failed"


def test_export_names_what_is_wrong(known_dir: Path, tmp_path: Path):
    store = Store(known_dir)
    with pytest.raises(ExportError, match="no such folder"):
        export_slice(store, Scope(FEATURE), tmp_path / "missing" / "x.csv")
    with pytest.raises(ExportError, match="cannot tell the format"):
        export_slice(store, Scope(FEATURE), tmp_path / "x.txt")
