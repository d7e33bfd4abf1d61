"""rag_server: retrieval-augmented answers about the LGPD and AI infrastructure.

The pipeline, one module per concern:

    corpus (documents.py) -> passages (chunking.py) -> analysis (analysis.py)
    -> indexes (indexes/) built atomically (build.py) -> command line (cli.py)
"""

__version__ = "0.1.0"
