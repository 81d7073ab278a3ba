"""The engine's environment variables are read in one place (retriever.config.Environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retriever.config import DEFAULT_CACHE, Environment, SettingsError


def test_the_engines_variables_are_read_in_one_place() -> None:
    assert Environment.read({}) == Environment(cache=DEFAULT_CACHE, bases=None, kernel=None)
    read = Environment.read(
        {
            "RETRIEVER_CACHE": "/tmp/cache",
            "RETRIEVER_BASES": " kb ",
            "RETRIEVER_KERNEL": "onnx-int8",
            "RETRIEVER_MILVUS_TOKEN": "user:secret",
        }
    )
    assert read == Environment(
        cache=Path("/tmp/cache"), bases=Path("kb"), kernel="onnx-int8", milvus_token="user:secret"
    )
    assert "secret" not in repr(read)
    # Set but empty or blank: the default, as if unset.
    assert Environment.read({"RETRIEVER_CACHE": "", "RETRIEVER_KERNEL": " "}) == Environment()


def test_made_with_keywords_settings_do_not_read_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRIEVER_KERNEL", "torch-fp32")
    assert Environment().kernel is None
    assert Environment.read().kernel == "torch-fp32"  # read() reads os.environ by default


def test_a_wrong_value_is_named_by_its_variable() -> None:
    from retriever.config import GenerationSettings

    environ = {
        "RETRIEVER_GENERATE_URL": "http://x/v1",
        "RETRIEVER_GENERATE_MODEL": "m",
        "RETRIEVER_GENERATE_MAX_TOKENS": "many",
        "RETRIEVER_GENERATE_TIMEOUT": "0",
    }
    with pytest.raises(SettingsError) as raised:
        GenerationSettings.from_env(environ)
    said = str(raised.value)
    assert "RETRIEVER_GENERATE_MAX_TOKENS='many': expected a whole number" in said
    assert "RETRIEVER_GENERATE_TIMEOUT='0': expected a number above 0" in said
    assert "secret" not in repr(GenerationSettings("http://x/v1", "m", api_key="secret"))


def test_every_variable_is_in_the_table_of_docs_settings_with_its_default() -> None:
    from retriever.config import GenerationSettings, WebSettings

    table = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text("utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines() if "| `" in line}
    for settings in (Environment, GenerationSettings, WebSettings):
        for field in settings.model_fields.values():
            if field.validation_alias is None:  # the engine's, or generation's, read there
                continue
            assert field.validation_alias in rows, field.validation_alias
            if isinstance(field.default, int | float) and not isinstance(field.default, bool):
                row = rows[field.validation_alias].split("|")[2]
                assert f"`{field.default:g}`" in row, (field.validation_alias, row)


def test_the_web_apps_wrong_values_are_all_named_at_once() -> None:
    from retriever.config import WebSettings

    with pytest.raises(SettingsError) as raised:
        WebSettings.from_env({"RETRIEVER_PORT": "0", "RETRIEVER_MAX_DOCUMENTS": "1.5"})
    said = str(raised.value)
    assert "RETRIEVER_PORT='0': expected a number of at least 1" in said
    assert "RETRIEVER_MAX_DOCUMENTS='1.5': expected a whole number" in said
    # Set but blank: the default. 0 where 0 is allowed: no limit.
    read = WebSettings.from_env({"RETRIEVER_PORT": " ", "RETRIEVER_QUESTIONS_PER_MINUTE": "0"})
    assert read.port == 7860 and read.questions_per_minute == 0
    assert WebSettings.from_env({"RETRIEVER_HOST": "0.0.0.0"}).questions_per_minute == 30
