import json
from pathlib import Path

import pytest

from rag_server.build import BuildConfig, build_index
from rag_server.catalog import IndexCatalog
from rag_server.errors import BuildError, CorpusError, IndexLoadError
from rag_server.loader import IndexBuild


def test_build_writes_a_complete_manifest(built) -> None:  # type: ignore[no-untyped-def]
    m = json.loads((built.path / "manifest.json").read_text())
    assert m["build_id"] == built.build_id and built.path.name == built.build_id
    assert m["passage_count"] == len((built.path / "passages.jsonl").read_text().splitlines())
    assert m["passages_by_language"] == {"pt": 7, "en": 8}
    assert len(m["corpus_checksum"]) == 64
    assert m["bm25"] == {"k1": 1.5, "b": 0.75, "epsilon": 0.25}
    assert m["embedding"]["model"] == "fake-hash-encoder" and m["embedding"]["dimension"] == 64
    assert m["analyzer"]["stem"] is True
    assert {"load", "chunk", "analyze", "keyword", "bm25", "embed", "dense"} <= set(m["stage_seconds"])
    for rel in ("passages.jsonl", "bm25/weights.npy", "keyword/vocab.json", "dense/index.faiss"):
        assert len(m["files"][rel]["sha256"]) == 64


def test_build_is_served_and_loads(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    catalog = IndexCatalog(tmp_path / "indexes")
    assert catalog.current_id() == built.build_id
    build = IndexBuild.load(tmp_path / "indexes")
    assert build.build_id == built.build_id
    assert len(build.passages) == len(build.bm25) == len(build.keyword) == len(build.dense)  # type: ignore[arg-type]


def test_a_build_failing_midway_leaves_the_served_build_untouched(
    built,
    corpus_dir: Path,
    tmp_path: Path,
    fake_encoder,  # type: ignore[no-untyped-def]
) -> None:
    root = tmp_path / "indexes"
    (corpus_dir / "new.md").write_text("# Novo\n\nUm documento novo sobre backups.\n")
    for stage in ("load", "chunk", "keyword", "bm25", "embed", "dense", "write"):

        def explode(name: str, stage: str = stage) -> None:
            if name == stage:
                raise RuntimeError(f"injected failure after {stage}")

        with pytest.raises(RuntimeError, match="injected"):
            build_index(BuildConfig([corpus_dir], root, progress=False), fake_encoder, after_stage=explode)
        assert IndexCatalog(root).current_id() == built.build_id
        assert IndexCatalog(root).debris() == []
        assert IndexBuild.load(root).build_id == built.build_id


def test_disk_full_during_write_fails_cleanly(
    built, corpus_dir: Path, tmp_path: Path, fake_encoder, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import rag_server.build as build_module

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build_module, "save_passages", no_space)
    with pytest.raises(OSError, match="No space"):
        build_index(BuildConfig([corpus_dir], tmp_path / "indexes", progress=False), fake_encoder)
    catalog = IndexCatalog(tmp_path / "indexes")
    assert catalog.current_id() == built.build_id and catalog.debris() == []


def test_debris_of_a_crashed_build_is_removed_by_the_next(built, corpus_dir: Path, make_build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "indexes" / "builds" / ".tmp-20200101T000000-dead"
    (stale / "bm25").mkdir(parents=True)
    make_build(corpus_dir)
    assert not stale.exists()


def test_old_builds_are_pruned_but_the_served_one_is_kept(corpus_dir: Path, make_build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = [make_build(corpus_dir, keep_builds=2).build_id for _ in range(3)]
    catalog = IndexCatalog(tmp_path / "indexes")
    assert catalog.build_ids() == sorted(ids)[-2:]
    assert catalog.current_id() == ids[-1]
    catalog.switch(ids[1])  # rollback
    assert IndexBuild.load(tmp_path / "indexes").build_id == ids[1]


def test_only_one_build_at_a_time(corpus_dir: Path, tmp_path: Path) -> None:
    catalog = IndexCatalog(tmp_path / "indexes")
    with catalog.lock(), pytest.raises(BuildError, match="another build"), IndexCatalog(tmp_path / "indexes").lock():
        pass


def test_incremental_rebuild_embeds_only_changed_passages(corpus_dir: Path, make_build, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    first = make_build(corpus_dir)
    assert first.encoded == first.manifest["passage_count"]
    unchanged = make_build(corpus_dir)
    assert unchanged.encoded == 0
    guide = corpus_dir / "gpu-guide-en.md"
    guide.write_text(guide.read_text().replace("test it.", "test it after every job."))
    fake_encoder.texts_encoded.clear()
    edited = make_build(corpus_dir)
    assert edited.encoded == 1
    assert len(fake_encoder.texts_encoded) == 1 and "after every job" in fake_encoder.texts_encoded[0]


# --------------------------------------------------------------------- corruption


def _corrupt(build_dir: Path, how: str) -> str:
    """Damage one file; returns the file name the error must mention."""
    if how == "truncated faiss":
        path = build_dir / "dense" / "index.faiss"
        path.write_bytes(path.read_bytes()[:100])
        return "index.faiss"
    if how == "altered embeddings":
        path = build_dir / "dense" / "index.faiss"
        data = bytearray(path.read_bytes())
        data[-7] ^= 0xFF
        path.write_bytes(bytes(data))
        return "index.faiss"
    if how == "bad manifest":
        (build_dir / "manifest.json").write_text("{not json")
        return "manifest.json"
    if how == "missing file":
        (build_dir / "bm25" / "weights.npy").unlink()
        return "weights.npy"
    if how == "altered passages":
        path = build_dir / "passages.jsonl"
        path.write_text(path.read_text().replace("GPU", "CPU"))
        return "passages.jsonl"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["truncated faiss", "altered embeddings", "bad manifest", "missing file", "altered passages"]
)
def test_corrupted_builds_are_refused_naming_the_file(built, how: str) -> None:  # type: ignore[no-untyped-def]
    name = _corrupt(built.path, how)
    with pytest.raises(IndexLoadError) as err:
        IndexBuild.load(built.path)
    assert name in str(err.value)


def test_no_build_yet_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexLoadError, match="no build has been made yet"):
        IndexBuild.load(tmp_path)


def test_bad_corpus_does_not_touch_the_served_build(built, corpus_dir: Path, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    (corpus_dir / "broken.md").write_text("---\nid: x\ntitle: [oops\n---\n")
    with pytest.raises(CorpusError, match="broken.md"):
        build_index(BuildConfig([corpus_dir], tmp_path / "indexes", progress=False), fake_encoder)
    assert IndexCatalog(tmp_path / "indexes").current_id() == built.build_id


def test_invalid_build_settings(corpus_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="unknown index"):
        build_index(BuildConfig([corpus_dir], tmp_path, indexes=["bm25", "colbert"], progress=False))
