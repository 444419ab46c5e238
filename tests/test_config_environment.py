"""HostConfig reads ``INVOKE_HOST_<FIELD>`` itself (it was a pydantic-settings BaseSettings): the same variables,
in any case, parsed as a flag's value would be; keywords win over the environment; unknown keywords are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from invoke_host.config import ENV_PREFIX, HostConfig


def test_each_kind_of_field_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {
        "ROOT": str(tmp_path), "PORT": "8123", "RAM_CACHE_GB": "1.5", "NO_AUTH": "yes", "PROCESSOR_ENABLED": "0",
        "DEVICES": "cpu, cuda:1", "PLUGINS_BLOCK": "a,b", "DEVICE": "cpu", "DATABASE_URL": "postgresql://x/y",
        "MODELS_DIR": str(tmp_path / "m"),
    }
    for name, value in values.items():
        monkeypatch.setenv(ENV_PREFIX + name, value)
    config = HostConfig()
    assert (config.root, config.port, config.ram_cache_gb, config.no_auth, config.processor_enabled) == (
        tmp_path, 8123, 1.5, True, False)
    assert (config.devices, config.plugins_block, config.device) == (["cpu", "cuda:1"], ["a", "b"], "cpu")
    assert (config.database_url, config.models_dir) == ("postgresql://x/y", tmp_path / "m")
    assert HostConfig.model_fields.keys() >= {name.lower() for name in values}


def test_the_variable_name_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("invoke_host_max_batch_size", "7")
    monkeypatch.setenv("Invoke_Host_Log_Level", "DEBUG")
    config = HostConfig()
    assert (config.max_batch_size, config.log_level) == (7, "DEBUG")


def test_a_list_variable_is_split_on_commas_not_decoded_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", '["a"]')
    assert HostConfig().plugins_allow == ['["a"]']
    monkeypatch.setenv("INVOKE_HOST_CORS_ORIGINS", "")
    assert HostConfig().cors_origins == []


def test_keywords_win_over_the_environment_and_defaults_apply_where_neither_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INVOKE_HOST_PORT", "8123")
    monkeypatch.delenv("INVOKE_HOST_HOST", raising=False)
    config = HostConfig(port=9000)
    assert (config.port, config.host) == (9000, "127.0.0.1")


def test_a_bad_value_in_a_variable_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_MAX_GRAPH_NODES", "0")
    with pytest.raises(ValidationError, match="max_graph_nodes"):
        HostConfig()
    monkeypatch.setenv("INVOKE_HOST_MAX_GRAPH_NODES", "many")
    with pytest.raises(ValidationError, match="max_graph_nodes"):
        HostConfig()


def test_unknown_variables_are_ignored_and_unknown_keywords_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_NO_SUCH_SETTING", "1")
    assert HostConfig().port == 9090
    with pytest.raises(ValidationError, match="no_such_setting"):
        HostConfig(no_such_setting=1)


def test_defaults_pass_the_validators_as_given_values_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # validate_default, as BaseSettings had it: a default goes through the same checks (and copies) as a value.
    monkeypatch.delenv("INVOKE_HOST_DEVICES", raising=False)
    one, two = HostConfig(), HostConfig()
    one.devices.append("cpu")
    assert two.devices == []
    with pytest.raises(ValidationError, match="wildcard origin"):
        HostConfig(cors_origins="*", cors_allow_credentials=True)
