"""The flag configuration is validated with errors naming file and key; tokens stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.flags.base import ConfigError
from app.flags.config import Secret, load_config

GOOD = """
backends:
  prod:
    type: unleash
    url: http://unleash.internal:4242
    token_env: TEST_UNLEASH_TOKEN
  ld:
    type: launchdarkly
    url: http://127.0.0.1:9
    token_secret: launchdarkly.api_token
features:
  ai-summaries:
    backend: prod
    environment: production
    flags:
      kill_switch: ai-summaries
      rollout: {key: ai-summaries-canary, environment: development}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "flags.yaml").write_text(text)
    return tmp_path


def test_a_good_file_loads_with_tokens_from_env_and_secrets(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TEST_UNLEASH_TOKEN", "tok-from-env")
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[launchdarkly]\napi_token = "tok-from-secrets"\n')
    config = load_config(write(tmp_path, GOOD), secrets_files=(secrets,))
    assert config.backends["prod"].token.reveal() == "tok-from-env"
    assert config.backends["ld"].token.reveal() == "tok-from-secrets"
    flags = config.feature("ai-summaries").flags
    assert [r.environment for r in flags.values()] == ["production", "development"]
    text = repr(config)
    assert "tok-from-env" not in text and "tok-from-secrets" not in text
    assert str(Secret("abc")) == "Secret('***')"


@pytest.mark.parametrize(
    ("broken", "words"),
    [
        (
            GOOD.replace("type: unleash", "type: optimizely"),
            "line 4: backends.prod.type: expected a backend type: one of flagd-file, unleash, launchdarkly, "
            "got 'optimizely'",
        ),
        (
            GOOD.replace("backend: prod", "backend: staging"),
            "line 13: features.ai-summaries.backend: expected one of the backends (prod, ld), got 'staging'",
        ),
        (
            GOOD.replace("kill_switch:", "killswitch:"),
            "line 16: features.ai-summaries.flags.killswitch: unknown name; "
            "expected a flag role: one of kill_switch",
        ),
        (
            GOOD.replace("token_env: TEST_UNLEASH_TOKEN", "token: abc"),
            "line 6: backends.prod.token: expected no token in this file: use token_env or token_secret",
        ),
        (
            GOOD.replace("url: http://unleash.internal:4242", "url: 5"),
            "line 5: backends.prod.url: expected non-empty text, got 5",
        ),
        ("features: [1, 2]", "line 1: features: expected a mapping"),
        ("backends: {a: {type: unleash, url: [x}", "line 1: not valid YAML"),
    ],
)
def test_errors_name_the_file_the_line_and_the_key(tmp_path: Path, broken: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, broken))
    assert f"{tmp_path / 'flags.yaml'}: {words}" in str(caught.value)
    assert "abc" not in str(caught.value)  # a token written in the file is never repeated


def test_no_file_means_no_features(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.features == {}
    with pytest.raises(ConfigError, match="feature x is not in"):
        config.feature("x")
