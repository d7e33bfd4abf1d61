#!/usr/bin/env python3
"""Build throughput and incremental rebuilds, measured in one run.

1. Raw encode throughput: the embedding model alone encodes every passage text (passages/s).
2. Full build throughput: ``build_index`` from an empty index root and cache, same model
   object, same texts — everything a build does (load, chunk, analyse, three indexes,
   checksums, fsync, atomic switch). Target: ≥ 0.9× the raw encode throughput.
3. One-document rebuild: one sentence added to one document, rebuilt with the warm cache.
   Target: ≤ 10% of the full build's time.
4. With ``--cli``, the same full and one-document builds as fresh ``rag-server build``
   processes (what an operator runs; includes Python start-up and library imports).

Each measurement is repeated ``--repeats`` times; the table shows medians.

    .venv/bin/python scripts/bench_build.py [--corpus corpus] [--repeats 3] [--cli]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rag_server.build import BuildConfig, build_index
from rag_server.chunking import chunk_corpus
from rag_server.documents import load_corpus
from rag_server.embedding import SentenceTransformerEncoder


def edit_one_document(corpus: Path) -> Path:
    """Append a sentence to the first section of one guide; returns the edited file."""
    target = sorted(corpus.rglob("*.md"))[-1]
    text = target.read_text()
    marker = "\n## "
    at = text.find(marker, text.find(marker) + 1)
    edited = text[:at] + f" Edited at {time.time_ns()} for the benchmark.\n" + text[at:]
    target.write_text(edited)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", default="corpus")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cli", action="store_true", help="also time fresh `rag-server build` processes")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    corpus = work / "corpus"
    shutil.copytree(args.corpus, corpus)
    texts = [p.index_text for p in chunk_corpus(load_corpus([corpus]))]
    encoder = SentenceTransformerEncoder(eager=True)
    encoder.encode(texts[:32], batch_size=args.batch_size)  # warm-up

    raw, full, one = [], [], []
    cli_full, cli_one = [], []
    for rep in range(args.repeats):
        # The previous repeat edited one document: measure against the corpus as it is now.
        texts = [p.index_text for p in chunk_corpus(load_corpus([corpus]))]
        start = time.perf_counter()
        encoder.encode(texts, batch_size=args.batch_size)
        raw.append(time.perf_counter() - start)

        root = work / f"idx-{rep}"
        config = BuildConfig([corpus], root, batch_size=args.batch_size, progress=False)
        start = time.perf_counter()
        result = build_index(config, encoder=encoder)
        full.append(time.perf_counter() - start)
        assert result.encoded == len(set(texts))  # identical passages are embedded once

        edit_one_document(corpus)
        start = time.perf_counter()
        again = build_index(config, encoder=encoder)
        one.append(time.perf_counter() - start)
        assert 0 < again.encoded < len(texts) // 10

        if args.cli:
            cmd = [sys.executable, "-m", "rag_server.cli", "build", "--corpus", str(corpus), "--quiet"]
            root_cli = work / f"cli-{rep}"
            start = time.perf_counter()
            subprocess.run([*cmd, "--out", str(root_cli)], check=True, capture_output=True)
            cli_full.append(time.perf_counter() - start)
            edit_one_document(corpus)
            start = time.perf_counter()
            subprocess.run([*cmd, "--out", str(root_cli)], check=True, capture_output=True)
            cli_one.append(time.perf_counter() - start)

    n = len(texts)
    raw_tp, build_tp = n / statistics.median(raw), n / statistics.median(full)
    print(f"machine: {platform.machine()}, {platform.python_version()}; passages: {n}; repeats: {args.repeats}")
    print("| measurement | median s | passages/s | ratio | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    print(f"| raw encode (model alone) | {statistics.median(raw):.2f} | {raw_tp:.1f} | 1.00 (baseline) | |")
    full_s = statistics.median(full)
    print(f"| full build, in process | {full_s:.2f} | {build_tp:.1f} | {build_tp / raw_tp:.2f}× raw | ≥ 0.9× |")
    ratio = statistics.median(one) / statistics.median(full)
    print(f"| one-document rebuild, in process | {statistics.median(one):.2f} | | {ratio:.1%} of full | ≤ 10% |")
    if args.cli:
        cf, co = statistics.median(cli_full), statistics.median(cli_one)
        print(f"| full build, `rag-server build` process | {cf:.2f} | {n / cf:.1f} | {n / cf / raw_tp:.2f}× raw | |")
        print(f"| one-document rebuild, `rag-server build` process | {co:.2f} | | {co / cf:.1%} of full | |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
