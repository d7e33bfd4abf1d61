#!/usr/bin/env python3
"""Compare retrieval strategies offline: ``python scripts/compare_retrieval.py [--dataset DIR] ...``.

The same as ``rag-server compare``; see ``--help``. Examples:

    python scripts/compare_retrieval.py --split test                       # project questions
    python scripts/compare_retrieval.py --dataset ../shared/datasets/scifact --k1 0.9 --b 0.4
"""

import sys

from rag_server.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
