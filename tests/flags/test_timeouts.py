"""The flag backends' timeout comes from one place: the `flag_timeout_s` setting, unless a
backend in flags.yaml names its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import config
from app.flags import registry


def test_backends_take_the_timeout_setting_unless_flags_yaml_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(
        config,
        "SETTINGS",
        tuple(
            config.Setting(s.name, 1.5 if s.name == "flag_timeout_s" else s.default, s.help)
            for s in config.SETTINGS
        ),
    )
    monkeypatch.setenv("ROLLBACK_DESK_TEST_TOKEN", "*:*.secret")
    (tmp_path / "flags.yaml").write_text(
        "backends:\n"
        "  plain: {type: unleash, url: 'http://127.0.0.1:9', token_env: ROLLBACK_DESK_TEST_TOKEN}\n"
        "  own: {type: unleash, url: 'http://127.0.0.1:9', token_env: ROLLBACK_DESK_TEST_TOKEN,"
        " timeout_s: 0.5}\n"
        "  ld: {type: launchdarkly, url: 'http://127.0.0.1:9', token_env: ROLLBACK_DESK_TEST_TOKEN}\n"
        "features: {}\n"
    )
    backends = registry.backends(tmp_path)
    assert backends["plain"].rest.timeout_s == 1.5
    assert backends["ld"].rest.timeout_s == 1.5
    assert backends["own"].rest.timeout_s == 0.5
