"""A small character-level GPT (nanoGPT style) that completes a prompt with an answer copied from its context.

Shapes use B = batch, T = time (characters), C = n_embd, H = n_head, D = C // H, V = vocab_size.

Generation keeps a KV cache: the prompt is processed once, then each step feeds only the newest
character and attends to the cached keys and values of every earlier one. The cache is allocated
once for the whole window and written in place, so a step copies nothing but its own key and
value (growing it with ``torch.cat`` copied the whole cache every step). Position embeddings are
learned and absolute (0 .. block_size - 1), so the context can never be longer than block_size:
when it would be, the oldest characters are cropped and, with the cache, the window is processed
again from scratch (its positions have all shifted). ``use_cache=False`` recomputes the whole
window every step, exactly like nanoGPT's ``generate``; both paths see the same window at every
step, so they give the same greedy output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..errors import InvalidParameterError

IGNORE_INDEX = -100
"""Target value that carries no loss (the prompt part of an example, and padding)."""


class KVCache:
    """Keys and values of the positions processed so far: per layer, preallocated (B, H, block_size, D)
    buffers of which the first ``length`` positions are filled."""

    def __init__(self, config: GeneratorConfig, batch: int, device: torch.device, dtype: torch.dtype) -> None:
        shape = (batch, config.n_head, config.block_size, config.n_embd // config.n_head)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H, T, D) after the ``length`` cached positions → keys and values of all
        length + T positions (views, no copy). ``length`` moves on once every layer has appended."""
        end = self.length + k.size(2)
        self.keys[layer][:, :, self.length : end] = k
        self.values[layer][:, :, self.length : end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def copy(self, length: int) -> KVCache:
        """A new cache holding this one's first ``length`` positions: the keys and values of a
        position depend only on the ids up to it, so they serve any sequence that starts the same."""
        other = KVCache.__new__(KVCache)
        other.keys = [k.clone() for k in self.keys]
        other.values = [v.clone() for v in self.values]
        other.length = min(length, self.length)
        return other


@dataclass
class PrefixMemo:
    """The ids of the last window prefilled by greedy lookup decoding and a copy of its cache.

    Answers to one question are completions of the same prompt with different openings (the
    pointer to the best sentence, a longer one, the runner-up's): each prompt starts with the
    previous one's ids, and prefilling those is most of a completion's cost (a pass over ~700
    positions). The next prefill reuses the positions the two share and computes only the rest.
    Not thread-safe: keep one per thread."""

    ids: list[int] = field(default_factory=list)
    cache: KVCache | None = None


@dataclass
class GeneratorConfig:
    vocab_size: int
    block_size: int = 768  # longest context, in characters (prompt + answer so far)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # bias in Linear and LayerNorm layers: without is a little faster and as good

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.block_size < 1 or self.n_layer < 1 or self.n_head < 1:
            raise ValueError(f"invalid generator config: {self}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (torch's has no ``bias=False`` before 2.1, and this reads plainly)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        # Query, key and value projections for all heads in one matmul.
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        """x (B, T, C) → y (B, T, C). With a cache, x sits after its ``cache.length`` positions,
        attends to them too, and its keys and values are stored in layer ``layer`` of it."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        # (B, T, C) → (B, H, T, D): heads become a batch dimension.
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if cache is not None:
            k, v = cache.append(layer, k, v)  # (B, H, T_past + T, D)
        t_total = k.size(2)

        dropout_p = self.dropout if self.training else 0.0
        if t_total == T:
            # No past: plain causal attention (is_causal masks the upper triangle of a square).
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        elif T == 1:
            # One new query after cached keys: it may see every position, so no mask. Written
            # out: for a single query these three ops cost less than SDPA's dispatch on a CPU.
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, H, 1, T_total)
            y = att.softmax(dim=-1) @ v  # (B, H, 1, D)
        else:
            # Several new queries after a past: is_causal would align the mask top-left, which is
            # wrong here; query i sits at position t_total - T + i and sees keys 0 .. that position.
            mask = torch.ones(T, t_total, dtype=torch.bool, device=x.device).tril(diagonal=t_total - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, H, T, D) → (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C) → (B, T, 4C) → (B, T, C)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class CharTransformer(nn.Module):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings (V, C)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embeddings (block_size, C)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the input embedding and the output projection share one (V, C) matrix.
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections: each block adds to the residual stream
        # twice, so without it the stream's variance grows with depth.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        """Parameters counted once (the tied embedding/output matrix is one parameter)."""
        return sum(p.numel() for p in self.parameters())

    def new_cache(self, batch: int) -> KVCache:
        """An empty KV cache for ``batch`` rows, on the model's device and in its dtype."""
        weight = self.wte.weight
        return KVCache(self.config, batch, weight.device, weight.dtype)

    def _hidden(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """idx (B, T) after the ``cache.length`` cached positions (none without a cache) → final
        hidden states (B, T, C); the cache, when given, then holds all length + T positions."""
        T = idx.size(1)
        t_past = 0 if cache is None else cache.length
        if t_past + T > self.config.block_size:
            raise ValueError(f"cannot attend over {t_past + T} characters: block_size is {self.config.block_size}")
        pos = torch.arange(t_past, t_past + T, dtype=torch.long, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for layer, block in enumerate(self.h):
            x = block(x, cache, layer)
        if cache is not None:
            cache.length += T
        return self.ln_f(x)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) long, targets (B, T) long or None → logits (B, T, V) and the mean cross-entropy
        (nats per character) over targets that are not ``IGNORE_INDEX``, or None without targets."""
        logits = self.lm_head(self._hidden(idx))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        return logits, loss

    def configure_optimizers(
        self, weight_decay: float, learning_rate: float, betas: tuple[float, float] = (0.9, 0.95)
    ) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices (Linear weights, embeddings) only, not on norms or biases."""
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        # The fused kernel updates every parameter in one launch: much faster on a GPU.
        fused = all(p.is_cuda for p in params)
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused or None)

    @staticmethod
    def _sample(
        logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
    ) -> torch.Tensor:
        """logits (B, V) of the next character → its ids (B, 1)."""
        if temperature == 0.0:
            return logits.argmax(dim=-1, keepdim=True)  # greedy: deterministic, no randomness used
        logits = logits / temperature
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = F.softmax(logits, dim=-1)
        return torch.multinomial(probs, num_samples=1, generator=generator)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        stop: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        lookup: int = 0,
        memo: PrefixMemo | None = None,
    ) -> torch.Tensor:
        """Extend idx (B, T) by at most ``max_new_tokens`` sampled ids → (B, T + n).

        ``temperature == 0`` picks the most likely character (greedy); otherwise the logits are
        divided by the temperature, cut to the ``top_k`` most likely and sampled with
        ``generator`` (same seed, same output). ``stop`` is the stop sequence as ids (the vocab
        encodes it): generation ends once every row has produced it after its prompt. Rows that
        stopped earlier keep growing until the last one stops, so a caller with B > 1 cuts each
        row at its first stop.

        ``lookup > 0`` (greedy, cached, B == 1) drafts up to that many characters by prompt lookup
        and checks them all in one forward pass (``_generate_lookup``): the same output as plain
        greedy decoding, in far fewer passes when the model copies from its prompt. ``memo`` (that
        path only) carries the last prompt's keys and values to the next call (:class:`PrefixMemo`).

        This is where the generation settings are checked (``InvalidParameterError``, a
        ``ValueError``); callers pass them on unchecked.
        """
        check_generation(idx, max_new_tokens, temperature, top_k, lookup)
        temperature = float(temperature)
        block_size = self.config.block_size
        stop_ids = list(stop) if stop else []
        if lookup and temperature == 0.0 and use_cache and idx.size(0) == 1:
            return self._generate_lookup(idx, max_new_tokens, stop_ids, lookup, memo)
        produced: list[list[int]] = [[] for _ in range(idx.size(0))]
        stopped = [False] * idx.size(0)
        cache: KVCache | None = None
        for _ in range(max_new_tokens):
            if not use_cache:
                # Recompute: the whole (cropped) window every step, O(T) work per new character.
                hidden = self._hidden(idx[:, -block_size:])
            elif cache is None or cache.length >= block_size:
                # (Re-)prefill: first step, or the window is full and the newest character would
                # need position block_size, so crop to the last block_size characters and start over.
                cache = self.new_cache(idx.size(0))
                hidden = self._hidden(idx[:, -block_size:], cache)
            else:
                # Decode: only the newest character, at position cache.length, against the cache.
                hidden = self._hidden(idx[:, -1:], cache)
            logits = self.lm_head(hidden[:, -1, :])  # (B, V): only the last position is needed
            next_id = self._sample(logits, temperature, top_k, generator)  # (B, 1)
            idx = torch.cat((idx, next_id), dim=1)
            if stop_ids:
                for row, token in enumerate(next_id[:, 0].tolist()):
                    produced[row].append(token)
                    if produced[row][-len(stop_ids) :] == stop_ids:
                        stopped[row] = True
                if all(stopped):
                    break
        return idx

    @staticmethod
    def _draft(text: str, length: int, longest_match: int = 8) -> list[int]:
        """Prompt lookup: find the latest earlier occurrence of the longest suffix of ``text`` (ids as
        code points, up to ``longest_match`` of them) and propose the ``length`` ids that followed it."""
        for n in range(min(longest_match, len(text) - 1), 0, -1):
            at = text.rfind(text[-n:], 0, len(text) - 1)
            if at >= 0:
                return [ord(ch) for ch in text[at + n : at + n + length]]
        return []

    def _generate_lookup(
        self, idx: torch.Tensor, max_new_tokens: int, stop: list[int], lookup: int, memo: PrefixMemo | None = None
    ) -> torch.Tensor:
        """Greedy decoding with prompt-lookup drafts (speculative decoding with the prompt as the
        draft model). The answer is copied from the context, so the characters that followed the
        last few generated ones in the prompt are a good guess at what comes next. Each pass feeds
        the last accepted character plus up to ``lookup`` drafted ones: the model's greedy choice
        after every prefix comes out of that one pass, drafts are accepted while they agree with
        it, and the first disagreement is replaced by the model's own choice. So the output is what
        one-at-a-time greedy decoding gives (up to float rounding in near ties), in about one pass
        per copied span instead of one per character; a pass over 33 positions costs about what a
        pass over one does on a CPU, since both read every weight once.

        Cache invariant: it holds every id of ``seq`` but the last (accepted, not yet fed)."""
        block_size = self.config.block_size
        seq: list[int] = idx[0].tolist()
        text = "".join(map(chr, seq))  # the same ids as a string, for fast substring search
        device = idx.device
        cache: KVCache | None = None
        produced = 0
        while produced < max_new_tokens:
            if cache is None and memo is not None:
                # First prefill: start from the positions shared with the memo's window.
                window = seq[-block_size:]
                shared = _shared_prefix(memo.ids, window) if memo.cache is not None and len(seq) <= block_size else 0
                shared = min(shared, len(window) - 1)  # at least the last id is fed, for its logits
                cache = memo.cache.copy(shared) if memo.cache is not None and shared > 0 else self.new_cache(1)
                hidden = self._hidden(torch.tensor([window[cache.length :]], device=device), cache)
                memo.ids, memo.cache = window, cache.copy(cache.length)
                accepted = [int(self.lm_head(hidden[0, -1]).argmax())]
            elif cache is None or cache.length >= block_size:
                # (Re-)prefill the last block_size ids, as plain greedy decoding does.
                cache = self.new_cache(1)
                hidden = self._hidden(torch.tensor([seq[-block_size:]], device=device), cache)
                accepted = [int(self.lm_head(hidden[0, -1]).argmax())]
            else:
                # Drafts may use the positions left in the window, and no more than are still wanted.
                room = min(lookup, block_size - cache.length - 1, max_new_tokens - produced - 1)
                draft = self._draft(text, room) if room > 0 else []
                hidden = self._hidden(torch.tensor([[seq[-1], *draft]], device=device), cache)
                choices = self.lm_head(hidden[0]).argmax(dim=-1).tolist()  # choices[i]: next after input i
                n = 0
                while n < len(draft) and draft[n] == choices[n]:
                    n += 1
                accepted = [*draft[:n], choices[n]]
                cache.length -= len(draft) - n  # forget the rejected drafts' keys and values
            for token in accepted:
                seq.append(token)
                text += chr(token)
                produced += 1
                if (stop and seq[-len(stop) :] == stop and produced >= len(stop)) or produced == max_new_tokens:
                    return torch.tensor([seq], dtype=idx.dtype, device=device)
        return torch.tensor([seq], dtype=idx.dtype, device=device)


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def check_generation(
    idx: torch.Tensor, max_new_tokens: int, temperature: float, top_k: int | None, lookup: int
) -> None:
    """``InvalidParameterError`` naming the first setting of :meth:`CharTransformer.generate`
    that is out of range or of the wrong type (a boolean is not a number here)."""

    def integer(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if idx.dim() != 2 or idx.size(1) == 0:
        raise InvalidParameterError(f"idx must be (B, T) with T >= 1, got shape {tuple(idx.shape)}")
    if not integer(max_new_tokens) or max_new_tokens < 0:
        raise InvalidParameterError(f"max_new_tokens (characters) must be an integer >= 0, got {max_new_tokens!r}")
    finite = isinstance(temperature, int | float) and not isinstance(temperature, bool) and math.isfinite(temperature)
    if not finite or temperature < 0:
        raise InvalidParameterError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (not integer(top_k) or top_k < 1):
        raise InvalidParameterError(f"top_k must be None or an integer >= 1, got {top_k!r}")
    if not integer(lookup) or lookup < 0:
        raise InvalidParameterError(f"lookup must be an integer >= 0, got {lookup!r}")
