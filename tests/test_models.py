"""The model registry: bundled facts, the resolution chain, and unknown prices kept unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

import tokenpilot as tp
from tokenpilot._config import user_config_path
from tokenpilot._models._registry import bundled_data, env_key


def write_user_config(text: str) -> Path:
    path = user_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_gpt_4o_comes_from_bundled_data() -> None:
    m = tp.get_model("gpt-4o")
    assert m.context_window == 128_000
    assert m.sources["context_window"] == "data"
    assert m.price_known and m.input_per_mtok == 2.5 and m.output_per_mtok == 10.0
    assert m.provider == "openai" and m.tokenizer == "o200k_base" and m.exact


def test_env_var_name_rule() -> None:
    assert env_key("gpt-4o") == "GPT_4O"
    assert env_key("openai/gpt-4.1-mini") == "OPENAI_GPT_4_1_MINI"


def test_environment_overrides_window_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENPILOT_MODEL_LIMIT_GPT_4O", "64000")
    monkeypatch.setenv("TOKENPILOT_MODEL_INPUT_PRICE_GPT_4O", "1.5")
    m = tp.get_model("gpt-4o")
    assert m.context_window == 64_000
    assert m.sources["context_window"] == "env:TOKENPILOT_MODEL_LIMIT_GPT_4O"
    assert m.input_per_mtok == 1.5
    assert m.output_per_mtok == 10.0 and m.sources["output_per_mtok"] == "data"


@pytest.mark.parametrize("raw", ["lots", "-5", "12.5"])
def test_bad_environment_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("TOKENPILOT_MODEL_LIMIT_GPT_4O", raw)
    with pytest.raises(tp.ConfigError, match="TOKENPILOT_MODEL_LIMIT_GPT_4O"):
        tp.get_model("gpt-4o")


def test_unknown_model_has_unknown_price_never_zero() -> None:
    m = tp.get_model("acme-llm-7")
    assert m.price_known is False
    assert m.input_per_mtok is None and m.output_per_mtok is None
    assert m.cost(input_tokens=1000, output_tokens=1000) is None
    assert m.context_window == 128_000 and m.sources["context_window"] == "default"
    assert m.exact is False


def test_provider_prefix_and_dated_variants_resolve_to_bundled_data() -> None:
    assert tp.get_model("openai/gpt-4o").sources["context_window"] == "data:gpt-4o"
    assert tp.get_model("openai/gpt-4o").context_window == 128_000
    dated = tp.get_model("gpt-4o-2031-01-01")
    assert dated.sources["input_per_mtok"] == "data:gpt-4o"


def test_family_rule_infers_window_and_tokenizer_but_never_price() -> None:
    m = tp.get_model("claude-future-9")
    assert m.provider == "anthropic" and m.sources["context_window"] == "rule"
    assert m.tokenizer == "estimate:claude"
    assert not m.price_known


def test_user_config_wins_over_project_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tokenpilot.toml").write_text(
        '[models."acme-llm-7"]\ncontext_window = 16000\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n'
    )
    monkeypatch.chdir(tmp_path)
    m = tp.get_model("acme-llm-7")
    assert m.context_window == 16_000 and m.price_known
    assert m.sources["context_window"] == f"config:{tmp_path / 'tokenpilot.toml'}"
    write_user_config('[models."acme-llm-7"]\ncontext_window = 8000\n')
    m = tp.get_model("acme-llm-7")
    assert m.context_window == 8_000 and m.input_per_mtok == 1.0


def test_project_config_is_found_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tokenpilot.toml").write_text("default_context_window = 32000\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert tp.get_model("acme-llm-7").context_window == 32_000


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[models.x\n", None),
        ('[models."x"]\ncontext_window = -1\n', "models.x.context_window"),
        ('[models."x"]\ncontext_window = "big"\n', "models.x.context_window"),
        ('[models."x"]\nwindow = 1\n', "models.x.window"),
        ("colour = 1\n", "colour"),
    ],
)
def test_bad_config_names_file_and_key(text: str, key: str | None) -> None:
    path = write_user_config(text)
    with pytest.raises(tp.ConfigError) as caught:
        tp.get_model("gpt-4o")
    assert str(path) in str(caught.value)
    if key:
        assert key in str(caught.value)


def test_cost_uses_cache_prices() -> None:
    m = tp.get_model("claude-sonnet-4-5")
    cost = m.cost(input_tokens=1_000_000, output_tokens=0, cache_read_tokens=1_000_000, cache_write_tokens=0)
    assert cost == pytest.approx(m.input_per_mtok + m.cache_read_per_mtok)  # type: ignore[operator]


def test_registry_covers_the_providers_and_records_its_date() -> None:
    data = bundled_data()
    assert data["date"] and "litellm" in data["source"]
    providers = {m.provider for m in tp.list_models()}
    assert {"openai", "anthropic", "google", "meta", "mistral", "deepseek", "qwen", "xai"} <= providers
    assert all(m.provider == "anthropic" for m in tp.list_models("anthropic"))
