#!/usr/bin/env python3
"""Rebuild the indexes: ``python scripts/build_index.py [--corpus DIR ...] [--out DIR] ...``.

The same as ``rag-server build``; see ``--help`` for every option.
"""

import sys

from rag_server.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
