"""The three indexes of a build, each saved as a directory of arrays plus ``params.json``.

* :class:`KeywordIndex` — how many distinct query terms a passage shares (the seed's idea).
* :class:`BM25Index` — BM25Okapi scores identical to rank_bm25's, from precomputed weights.
* :class:`DenseIndex` — normalised sentence embeddings in a FAISS inner-product index.
"""

from .bm25 import BM25Index, BM25Params
from .dense import DenseIndex
from .keyword import KeywordIndex
from .sparse import ScoredPassages

__all__ = ["BM25Index", "BM25Params", "DenseIndex", "KeywordIndex", "ScoredPassages"]
