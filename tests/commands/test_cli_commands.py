"""The CLI's command table: running one command imports only the module that owns it, so
the table must name every command each module registers."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from app.cli import COMMAND_MODULES, main


@pytest.mark.parametrize("module", sorted(COMMAND_MODULES))
def test_the_table_names_exactly_the_commands_a_module_registers(module: str):
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module).register(sub, argparse.ArgumentParser(add_help=False))
    assert tuple(sub.choices) == COMMAND_MODULES[module]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    listed = capsys.readouterr().out
    for names in COMMAND_MODULES.values():
        for name in names:
            assert name in listed


def test_running_a_command_imports_only_its_module(tmp_path):
    code = (
        "import sys; from app.cli import main\n"
        f"main(['changes', '--data-dir', {str(tmp_path)!r}, '--json'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('app.commands.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['app.commands.data']"


def test_an_unknown_command_is_refused_with_the_list(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])
    assert exit_.value.code == 2
    assert "ingest" in capsys.readouterr().err
