"""Lesson 5 — retrieval-augmented generation (RAG) with keyword overlap.

RAG answers a question in two moves: *retrieve* the passages most relevant to it, then put them in
the prompt, so the language model answers from that text instead of from memory. This lesson uses
the product's own pieces on three one-sentence documents.

1. Analyse documents and question alike with :class:`~rag_server.analysis.Analyzer`: case and
   accents folded, stop words ("how", "to", "with") dropped, words stemmed — so "Running" meets
   "run" and "servers" meets "server". Matching raw words would miss both.
2. Index the documents' terms with :class:`~rag_server.indexes.KeywordIndex`, an inverted index
   (term → the documents that contain it), so a query touches only documents sharing a term.
3. Score each document by overlap, the number of *distinct* query terms it contains::

       score(d) = |terms(q) ∩ terms(d)|

   Every term counts the same; BM25, the server's sparse ranking, also weighs rare terms more and
   discounts long documents.
4. Rank best first (ties by document order) and keep the top ``k`` as the context.
5. Prompt: ``Question: …`` / ``Context: [1] …`` / ``Answer:``. Numbered passages let the answer
   cite its sources, and ending on ``Answer:`` leaves the model one thing to do: continue.

Run: ``python -m rag_server.teaching.keyword_rag``
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rag_server.analysis import Analyzer
from rag_server.indexes import KeywordIndex

DOCUMENTS: tuple[str, ...] = (
    "LGPD requires a legal basis and security measures when processing personal data.",
    "Dedicated GPU servers isolate AI workloads from other tenants.",
    "Running AI servers in Brazil with LGPD compliance needs encryption, access control and audit logs.",
)
QUESTION = "How to run AI servers with LGPD compliance?"


class Retrieval(NamedTuple):
    """What the lesson computes."""

    query_terms: list[str]
    scores: list[float]  # overlap count of every document, in document order
    ranking: list[int]  # indices of the top-k documents that share a term, best first
    passages: list[str]  # their texts, same order
    prompt: str

    @property
    def top_document(self) -> str | None:
        return self.passages[0] if self.passages else None


def build_prompt(question: str, passages: Sequence[str]) -> str:
    """``Question: …\\nContext: [1] …\\n[2] …\\nAnswer:`` — one numbered line per passage."""
    context = "\n".join(f"[{i}] {passage}" for i, passage in enumerate(passages, start=1))
    return f"Question: {question}\nContext: {context or '(no matching document)'}\nAnswer:"


def keyword_rag(
    question: str = QUESTION, documents: Sequence[str] = DOCUMENTS, k: int = 1, language: str = "en"
) -> Retrieval:
    """Analyse, index, score by overlap, keep the top ``k`` and build the prompt."""
    analyzer = Analyzer()
    # The same analyser (and language) for documents and query: terms only match if made alike.
    index = KeywordIndex.build([analyzer.tokens(doc, language) for doc in documents])
    query_terms = analyzer.tokens(question, language)
    hits = index.search(query_terms, k)  # documents sharing no term are never returned
    ranking = [int(i) for i in hits.indices]
    passages = [documents[i] for i in ranking]
    return Retrieval(
        query_terms=query_terms,
        scores=[float(s) for s in index.get_scores(query_terms)],
        ranking=ranking,
        passages=passages,
        prompt=build_prompt(question, passages),
    )


def main() -> None:
    result = keyword_rag()
    print(f"Query: {QUESTION}")
    print(f"Query terms: {result.query_terms}")
    for i, (doc, score) in enumerate(zip(DOCUMENTS, result.scores, strict=True), start=1):
        print(f"Score {score:.0f} — document {i}: {doc}")
    print(f"Top document: {result.top_document or '(none shares a query term)'}")
    print("Prompt preview:")
    print(result.prompt)


if __name__ == "__main__":
    main()
