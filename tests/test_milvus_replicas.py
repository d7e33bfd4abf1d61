"""Two API processes (gunicorn) serving one Milvus: a rebuild switches both, with no reload
call and no failed request.

Milvus Lite allows one process per data directory, so it runs as its own server process
(``python -m milvus_lite server``) and both replicas and the builder talk to it over gRPC, as
replicas talk to a Milvus cluster. The builds use a real embedding model, the bundled MiniLM
(the quickest to load: the replicas load the model each build names, on two busy cores)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rag_server.build import BuildConfig
from rag_server.embedding import make_encoder
from rag_server.milvus import MilvusSettings
from rag_server.milvus.build import build_into_milvus

from support.devserver import LocalServer, post_json
from support.milvus_server import MilvusLiteServer


@pytest.mark.server
@pytest.mark.slow
def test_a_rebuild_switches_every_replica_with_no_failed_request(
    milvus_server: MilvusLiteServer, tmp_path: Path, corpus_dir: Path
) -> None:
    replicas: list[LocalServer] = []
    try:
        settings = MilvusSettings(uri=milvus_server.uri)
        config = BuildConfig([corpus_dir], tmp_path / "cache", model="minilm", progress=False)
        encoder = make_encoder(config.model)  # loaded once for both builds
        first = build_into_milvus(config, settings, encoder)
        env = {"RAG_BACKEND": "milvus", "RAG_MILVUS_URI": milvus_server.uri, "RAG_GENERATOR_CHECKPOINT": "none"}
        for _ in range(2):
            replicas.append(LocalServer(tmp_path / "unused", server="gunicorn", env=env, ready_timeout=120).start())
        assert [r.build_id for r in replicas] == [first.build_id] * 2

        seen: list[list[tuple[int, str]]] = [[], []]  # per replica: (status, build id) in order
        stop = threading.Event()

        def ask(i: int) -> None:
            while not stop.is_set():
                status, body = post_json(replicas[i].base + "/v1/search", {"query": "backups noturnos", "k": 3})
                seen[i].append((status, body.get("build_id", "") if isinstance(body, dict) else ""))
                stop.wait(0.02)  # a steady stream that leaves the two cores room for the rebuild

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        try:
            (corpus_dir / "backups.md").write_text("# Backups\n\nOs backups noturnos ficam no território nacional.\n")
            second = build_into_milvus(config, settings, encoder)
            for _ in range(300):  # both follow the alias within its TTL (1 s); wait up to ~60 s on a busy machine
                if all(s and s[-1][1] == second.build_id for s in seen):
                    break
                time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)

        for requests in seen:
            statuses = {status for status, _ in requests}
            assert statuses == {200}, statuses
            builds = [build for _, build in requests]
            assert builds[0] == first.build_id and builds[-1] == second.build_id
            switched = builds.index(second.build_id)
            assert set(builds[switched:]) == {second.build_id}  # never back to the old build
        status, body = post_json(replicas[0].base + "/v1/search", {"query": "backups noturnos", "k": 1})
        assert status == 200 and body["hits"][0]["doc_id"] == "backups"
    finally:
        for replica in replicas:
            replica.stop()
