import json
from pathlib import Path

import pytest

from rag_server.chunking import chunk_corpus, chunk_document, pack
from rag_server.documents import load_corpus, read_beir_corpus
from rag_server.errors import CorpusError
from rag_server.passage import normalize_article, parse_article_ref

FIXTURES = Path(__file__).parent / "fixtures"


def test_markdown_front_matter_is_read(corpus_dir: Path) -> None:
    docs = {d.id: d for d in load_corpus([corpus_dir])}
    doc = docs["lei-exemplo-pt"]
    assert (doc.title, doc.language, doc.type, doc.source) == (
        "Lei de exemplo — Capítulo I",
        "pt",
        "law",
        "Lei 99.999/2030",
    )
    assert doc.articles == ("1", "2", "3")
    assert not doc.text.startswith("---")


def test_legal_markdown_passages_record_article_and_provision(corpus_dir: Path) -> None:
    docs = {d.id: d for d in load_corpus([corpus_dir])}
    passages = chunk_document(docs["lei-exemplo-pt"])
    refs = [(p.article, p.provision) for p in passages]
    assert refs == [("1", None), ("2", None), ("2", "§ 1º"), ("2", "parágrafo único"), ("3", None)]
    assert passages[2].citation == "Lei 99.999/2030, Art. 2, § 1º"
    assert "Art. 2" in passages[2].section
    assert all(p.doc_id == "lei-exemplo-pt" and p.language == "pt" for p in passages)


def test_translations_share_article_metadata(corpus_dir: Path) -> None:
    docs = {d.id: d for d in load_corpus([corpus_dir])}
    pt = [p.article for p in chunk_document(docs["lei-exemplo-pt"])]
    en = [p.article for p in chunk_document(docs["lei-exemplo-en"])]
    assert pt == en


def test_guides_split_at_headings_without_articles(corpus_dir: Path) -> None:
    docs = {d.id: d for d in load_corpus([corpus_dir])}
    passages = chunk_document(docs["gpu-guide-en"])
    assert [p.section.split(" › ")[-1] for p in passages] == ["Dedicated servers", "Clearing memory", "Encryption"]
    assert all(p.article is None for p in passages)


def test_plain_text_statute_is_split_along_its_structure(corpus_dir: Path) -> None:
    docs = {d.id: d for d in load_corpus([corpus_dir])}
    statute = docs["estatuto"]
    assert statute.type == "law" and statute.language == "pt"
    whole = chunk_document(statute)
    assert [p.article for p in whole] == ["1", "2"]
    assert whole[0].section.startswith("CAPÍTULO I")
    parts = chunk_document(statute, max_chars=160)
    assert {p.article for p in parts} == {"1", "2"}
    art2 = [p.provision for p in parts if p.article == "2"]
    assert len(art2) > 1 and art2[0].startswith("caput")
    assert any(prov and "§" in prov for prov in art2)
    assert all(len(p.text) <= 160 for p in parts)


def test_article_refs() -> None:
    assert parse_article_ref("Art. 7, § 1º — Consent") == ("7", "§ 1º")
    assert parse_article_ref("Art. 55-J — Competências") == ("55-J", None)
    assert parse_article_ref("Art. 1º Esta Lei dispõe") == ("1", None)
    assert parse_article_ref("Article 20, sole paragraph") == ("20", "sole paragraph")
    assert parse_article_ref("Artificial intelligence") is None
    assert normalize_article("art. 55-a") == normalize_article("55-A") == "55-A"


def test_pack_never_splits_mid_sentence_and_respects_the_limit() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(60))
    chunks = pack([text], max_chars=200)
    assert all(len(c) <= 200 for c in chunks)
    assert all(c.endswith("here.") for c in chunks)
    assert " ".join(chunks) == text


def test_pack_cuts_a_giant_sentence_at_word_boundaries() -> None:
    chunks = pack(["word " * 500], max_chars=120)
    assert all(len(c) <= 120 for c in chunks) and all(not c.startswith(" ") for c in chunks)


def test_ids_are_stable_and_edits_stay_local(corpus_dir: Path) -> None:
    before = {p.id: p for p in chunk_corpus(load_corpus([corpus_dir]))}
    again = {p.id: p for p in chunk_corpus(load_corpus([corpus_dir]))}
    assert before.keys() == again.keys()
    path = corpus_dir / "gpu-guide-en.md"
    path.write_text(path.read_text().replace("test it.", "test it after every job."))
    after = {p.id: p for p in chunk_corpus(load_corpus([corpus_dir]))}
    changed = before.keys() ^ after.keys()
    assert changed and all(pid.startswith("gpu-guide-en#") for pid in changed)
    assert len(before) == len(after)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"---\nid: a\ntitle: [unclosed\n---\nbody\n", "malformed front matter"),
        (b"---\nid: a\ntitle: t\nlanguage: pt\ntype: law\nbody without end\n", "never closed"),
        (b"---\ntitle: t\nlanguage: pt\ntype: law\n---\nbody\n", "missing 'id'"),
        (b"---\nid: a\ntitle: t\nlanguage: fr\ntype: law\n---\nbody\n", "'language' is 'fr'"),
        (b"---\nid: Bad Id\ntitle: t\nlanguage: pt\ntype: law\n---\nbody\n", "must be lowercase"),
        (b"\xff\xfe\x00broken", "not valid UTF-8"),
    ],
)
def test_bad_documents_name_the_file_and_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    (tmp_path / "doc.md").write_bytes(content)
    with pytest.raises(CorpusError) as err:
        load_corpus([tmp_path])
    assert err.value.path.endswith("doc.md")
    assert problem in str(err.value)


def test_missing_and_empty_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus([tmp_path / "nope"])
    with pytest.raises(CorpusError, match="no documents"):
        load_corpus([tmp_path])


def test_duplicate_ids_are_refused(tmp_path: Path, corpus_dir: Path) -> None:
    (corpus_dir / "copy.md").write_text((corpus_dir / "gpu-guide-en.md").read_text())
    with pytest.raises(CorpusError, match="already used"):
        load_corpus([corpus_dir])


def test_markdown_without_front_matter_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "Notas Internas.md").write_text("# Política de backup\n\nFazemos cópias diárias dos dados.\n")
    doc = load_corpus([tmp_path])[0]
    assert (doc.id, doc.title, doc.language, doc.type) == ("notas-internas", "Política de backup", "pt", "guide")


def test_beir_corpus(tmp_path: Path) -> None:
    docs = list(read_beir_corpus(FIXTURES / "beir" / "corpus.jsonl"))
    assert [d.id for d in docs] == ["d1", "d2", "d3", "d4"]
    passages = chunk_corpus(docs)
    assert [p.doc_id for p in passages] == ["d1", "d2", "d3", "d4"]
    bad = tmp_path / "corpus.jsonl"
    bad.write_text(json.dumps({"title": "no id"}) + "\n")
    with pytest.raises(CorpusError, match="line 1"):
        list(read_beir_corpus(bad))


def test_beir_lone_surrogate_is_a_corpus_error(tmp_path: Path) -> None:
    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"_id": "d1", "text": "GPU \\ud800 memory"}\n')
    with pytest.raises(CorpusError, match="line 1: invalid Unicode"):
        list(read_beir_corpus(bad))


def test_unconstructible_front_matter_is_a_corpus_error(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nid: a\ndate: 2024-13-01\n---\nbody\n")
    with pytest.raises(CorpusError, match="a.md: malformed front matter"):
        load_corpus([tmp_path])
