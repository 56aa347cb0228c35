"""Configuration: clear errors, environment overrides, keys only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegraph import ConfigError, Runtime, UnknownRoleError
from rolegraph.config import load_config
from rolegraph.models import OpenAICompatModel

VLLM = """
[endpoints.gpu]
base_url = "http://127.0.0.1:8000/v1"
dialect = "vllm"
api_key_env = "TEST_VLLM_KEY"

[roles.planner]
endpoint = "gpu"
model = "planner-lora"
temperature = 0.2

[roles.grounder]
endpoint = "gpu"
model = "grounder-lora"
"""


def toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rolegraph.toml"
    p.write_text(text)
    return p


def test_roles_map_to_adapters_on_one_endpoint(tmp_path: Path) -> None:
    rt = Runtime.load(toml(tmp_path, VLLM), env={"TEST_VLLM_KEY": "sk-secret"})
    planner, grounder = rt.model("planner").inner, rt.model("grounder").inner  # type: ignore[attr-defined]
    assert isinstance(planner, OpenAICompatModel) and isinstance(grounder, OpenAICompatModel)
    assert (planner.model, grounder.model) == ("planner-lora", "grounder-lora")
    assert planner.endpoint is grounder.endpoint  # one client per endpoint
    assert planner.defaults["temperature"] == 0.2
    assert "sk-secret" not in repr(planner) and "sk-secret" not in repr(planner.endpoint)


def test_unknown_role_lists_known_ones(tmp_path: Path) -> None:
    rt = Runtime.load(toml(tmp_path, VLLM), env={"TEST_VLLM_KEY": "k"})
    with pytest.raises(UnknownRoleError, match=r"no model for role 'verifier'.*known roles: grounder, planner"):
        rt.model("verifier")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    cfg = load_config(toml(tmp_path, VLLM), env={"ROLEGRAPH__ROLES__PLANNER__MODEL": "planner-v2",
                                                  "ROLEGRAPH__ROLES__PLANNER__TEMPERATURE": "0.9"})
    assert cfg.roles["planner"].model == "planner-v2"
    assert cfg.roles["planner"].temperature == 0.9


def test_api_key_in_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="API keys are read only from the environment"):
        load_config(toml(tmp_path, '[endpoints.x]\nbase_url = "http://127.0.0.1:1/v1"\napi_key = "sk-1"\n'), env={})


def test_missing_key_variable_is_named(tmp_path: Path) -> None:
    rt = Runtime.load(toml(tmp_path, VLLM), env={})
    with pytest.raises(ConfigError, match=r"\$TEST_VLLM_KEY, which is not set"):
        rt.model("planner")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[roles.a]\nendpoint = "nowhere"\n', "role 'a' uses endpoint 'nowhere'.*known endpoints: embedded"),
        ('[roles.a]\nmodle = "x"\n', r"roles.a.modle: Extra inputs are not permitted"),
        ("[endpoints.x]\n", "endpoints.x.*needs base_url"),
        ("roles = [", "not valid TOML"),
    ],
)
def test_config_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(toml(tmp_path, text), env={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_default_config_runs_every_role_on_the_embedded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rt = Runtime.load(env={})
    model = rt.model("anything")
    inner = model.inner  # type: ignore[attr-defined]
    assert isinstance(inner, OpenAICompatModel) and inner.model == "smollm2-135m"
    assert inner.endpoint.name == "embedded"
    assert rt.model("anything") is model
