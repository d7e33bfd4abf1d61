"""One settings module: every RAG_* variable read when the app or the CLI starts, typed, and
RAG_TORCH_THREADS honoured by the embedding model the app loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_server.errors import ConfigError
from rag_server.settings import Settings


def test_every_variable_is_read_typed_and_empty_means_unset() -> None:
    env = {
        "RAG_INDEX_DIR": "/srv/indexes",
        "RAG_SUPPORT_THRESHOLD": "0.5",
        "RAG_MAX_BODY_BYTES": "1024",
        "RAG_TORCH_THREADS": "2",
        "RAG_API_KEYS": "k-1",
        "RAG_GENERATOR_CHECKPOINT": "",
        "RAG_LOG_HASH_KEY": "secret",
    }
    settings = Settings.from_env(env)
    assert settings.index_dir == "/srv/indexes" and settings.support_threshold == 0.5
    assert settings.max_body_bytes == 1024 and settings.torch_threads == 2
    assert settings.api_keys == "k-1" and settings.log_hash_key == "secret"
    assert settings.generator_checkpoint is None  # empty: the packaged checkpoint, as when unset
    assert Settings.from_env({}) == Settings()
    config = settings.flask_config()
    assert config["MAX_CONTENT_LENGTH"] == 1024 and config["INDEX_DIR"] == "/srv/indexes"


def test_the_backend_settings() -> None:
    assert Settings().backend == "local"
    env = {"RAG_BACKEND": "milvus", "RAG_MILVUS_URI": "http://milvus:19530", "RAG_MILVUS_TOKEN": "root:secret"}
    config = Settings.from_env(env).flask_config()
    assert (config["BACKEND"], config["MILVUS_URI"], config["MILVUS_TOKEN"]) == tuple(env.values())


@pytest.mark.parametrize(
    ("var", "value"), [("RAG_TORCH_THREADS", "two"), ("RAG_SUPPORT_THRESHOLD", "high"), ("RAG_BACKEND", "faiss")]
)
def test_a_bad_value_names_its_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{var}="):
        Settings.from_env({var: value})


def test_the_cli_reads_the_settings_when_it_starts(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from rag_server import cli

    monkeypatch.setenv("RAG_INDEX_DIR", "/srv/other-indexes")
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "minilm")
    assert cli.make_parser().parse_args(["search", "x"]).index == "/srv/other-indexes"
    assert cli.make_parser().parse_args(["build"]).model == "minilm"
    monkeypatch.setenv("RAG_TORCH_THREADS", "many")
    assert cli.main(["search", "x"]) == 2
    assert capsys.readouterr().err.startswith("error: RAG_TORCH_THREADS='many'")


def test_the_log_key_is_read_when_the_app_is_made(app, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from rag_server.api import create_app

    pipeline = app.extensions["rag_pipeline"]
    monkeypatch.setenv("RAG_LOG_HASH_KEY", "key-one")
    first = create_app({"PIPELINE": pipeline, "TESTING": True})
    assert first.extensions["rag_query_key"] == b"key-one"
    monkeypatch.delenv("RAG_LOG_HASH_KEY")
    second = create_app({"PIPELINE": pipeline, "TESTING": True})
    third = create_app({"PIPELINE": pipeline, "TESTING": True})
    assert second.extensions["rag_query_key"] not in (b"", b"key-one")
    assert second.extensions["rag_query_key"] == third.extensions["rag_query_key"]  # one random key per process


def test_torch_threads_setting_holds_after_the_app_loads_an_index(
    real_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedding model loads with the configured thread count instead of resetting it to 1.

    torch keeps the count per thread: a thread started later (a request's) takes the count set
    last anywhere in the process, which is what the warm-up thread set when it loaded the model."""
    import threading

    import torch

    from rag_server.api import create_app

    before = torch.get_num_threads()
    wanted = 3 if before != 3 else 4
    monkeypatch.setenv("RAG_INDEX_DIR", str(real_index))
    monkeypatch.setenv("RAG_TORCH_THREADS", str(wanted))
    monkeypatch.setenv("RAG_GENERATOR_CHECKPOINT", "none")
    try:
        app = create_app()
        assert app.extensions["rag_pipeline"] is not None, app.extensions.get("rag_load_error")
        assert app.extensions["rag_warmed"].wait(timeout=300)
        pipeline = app.extensions["rag_pipeline"]
        assert pipeline._state.encoder is not None  # the warm-up loaded the build's own model
        seen: list[int] = []
        request_thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        request_thread.start()
        request_thread.join()
        assert seen == [wanted]
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
