"""A small character-level GPT (nanoGPT style) that completes a prompt with an answer copied from its context.

Shapes use B = batch, T = time (characters), C = n_embd, H = n_head, D = C // H, V = vocab_size.

Generation keeps a KV cache: the prompt is processed once, then each step feeds only the newest
character and attends to the cached keys and values of every earlier one. Position embeddings are
learned and absolute (0 .. block_size - 1), so the context can never be longer than block_size:
when it would be, the oldest characters are cropped and, with the cache, the window is processed
again from scratch (its positions have all shifted). ``use_cache=False`` recomputes the whole
window every step, exactly like nanoGPT's ``generate``; both paths see the same window at every
step, so they give the same greedy output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

IGNORE_INDEX = -100
"""Target value that carries no loss (the prompt part of an example, and padding)."""

# One (keys, values) pair per layer, each (B, H, T_past, D).
KVCache = list[tuple[torch.Tensor, torch.Tensor]]


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

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, C), past keys/values (B, H, T_past, D) each → y (B, T, C) and the keys/values of
        all T_past + T positions (the caller keeps them only when it caches)."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        # (B, T, C) → (B, H, T, D): heads become a batch dimension.
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)  # (B, H, T_past + T, D)
            v = torch.cat((past[1], v), dim=2)
        t_total = k.size(2)

        dropout_p = self.dropout if self.training else 0.0
        if t_total == T:
            # No past: plain causal attention (is_causal masks the upper triangle of a square).
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        elif T == 1:
            # One new query after cached keys: it may see every position, so no mask at all.
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:
            # Several new queries after a past: is_causal would align the mask top-left, which is
            # wrong here; query i sits at position t_total - T + i and sees keys 0 .. that position.
            mask = torch.ones(T, t_total, dtype=torch.bool, device=x.device).tril(diagonal=t_total - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, H, T, D) → (B, T, C)
        return self.resid_dropout(self.c_proj(y)), (k, v)


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

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attended, present = self.attn(self.ln_1(x), past)
        x = x + attended
        x = x + self.mlp(self.ln_2(x))
        return x, present


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

    def _hidden(self, idx: torch.Tensor, past: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """idx (B, T) after ``past`` (T_past cached positions) → final hidden states (B, T, C) and
        the cache for all T_past + T positions."""
        T = idx.size(1)
        t_past = 0 if past is None else past[0][0].size(2)
        if t_past + T > self.config.block_size:
            raise ValueError(f"cannot attend over {t_past + T} characters: block_size is {self.config.block_size}")
        pos = torch.arange(t_past, t_past + T, dtype=torch.long, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        present: KVCache = []
        for i, block in enumerate(self.h):
            x, kv = block(x, None if past is None else past[i])
            present.append(kv)
        return self.ln_f(x), present

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) long, targets (B, T) long or None → logits (B, T, V) and the mean cross-entropy
        (nats per character) over targets that are not ``IGNORE_INDEX``, or None without targets."""
        hidden, _ = self._hidden(idx)
        logits = self.lm_head(hidden)  # (B, T, V)
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
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)

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
    ) -> torch.Tensor:
        """Extend idx (B, T) by at most ``max_new_tokens`` sampled ids → (B, T + n).

        ``temperature == 0`` picks the most likely character (greedy); otherwise the logits are
        divided by the temperature, cut to the ``top_k`` most likely and sampled with
        ``generator`` (same seed, same output). ``stop`` is the stop sequence as ids (the vocab
        encodes it): generation ends once every row has produced it after its prompt. Rows that
        stopped earlier keep growing until the last one stops, so a caller with B > 1 cuts each
        row at its first stop.
        """
        if idx.dim() != 2 or idx.size(1) == 0:
            raise ValueError(f"idx must be (B, T) with T >= 1, got shape {tuple(idx.shape)}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if temperature < 0.0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        block_size = self.config.block_size
        stop_ids = list(stop) if stop else []
        produced: list[list[int]] = [[] for _ in range(idx.size(0))]
        stopped = [False] * idx.size(0)
        cache: KVCache | None = None
        for _ in range(max_new_tokens):
            if not use_cache:
                # Recompute: the whole (cropped) window every step, O(T) work per new character.
                hidden, _ = self._hidden(idx[:, -block_size:])
            elif cache is None or cache[0][0].size(2) >= block_size:
                # (Re-)prefill: first step, or the window is full and the newest character would
                # need position block_size, so crop to the last block_size characters and start over.
                hidden, cache = self._hidden(idx[:, -block_size:])
            else:
                # Decode: only the newest character, at position T_past, against the cache.
                hidden, cache = self._hidden(idx[:, -1:], cache)
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
