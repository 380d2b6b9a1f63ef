"""A small mixture-of-experts transformer language model (the ``moe_lm`` problem's model).

Pre-norm decoder blocks: causal self-attention, then a routed mixture-of-experts feed-forward
layer (Shazeer et al. 2017; DeepSeekMoE-style fine-grained experts, no shared expert). In each
MoE layer the router scores are s_t = sigmoid(u_t^T e) (or softmax), the *algorithm's* router
selects K experts per token from them (possibly with a bias), and the output is

    h_t = sum_{i selected} s_{i,t} FFN_i(u_t)

with the raw scores as gates (Wang et al. 2024): the selection is a discrete choice
taken without gradient, so a selection bias never weights an output and never gets a gradient.
Assignments the router drops (-1) contribute nothing (the residual stream carries the token).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from optbench.contracts.routing_stream import Router


def gate_weights(scores: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """(T, K) gates: the raw score of each selected expert, 0 for a dropped assignment."""
    return scores.gather(1, selected.clamp_min(0)) * (selected >= 0).to(scores.dtype)


class MoEFeedForward(nn.Module):
    """``n_experts`` two-layer GELU experts behind a router; ``top_k`` per token."""

    def __init__(self, d_model: int, n_experts: int, hidden: int, gate: str) -> None:
        super().__init__()
        self.n_experts, self.gate = n_experts, gate
        self.router = nn.Parameter(torch.empty(n_experts, d_model))
        self.w_in = nn.Parameter(torch.empty(n_experts, d_model, hidden))
        self.w_out = nn.Parameter(torch.empty(n_experts, hidden, d_model))

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        logits = x @ self.router.T
        return torch.sigmoid(logits) if self.gate == "sigmoid" else torch.softmax(logits, dim=-1)

    def forward(
        self, x: torch.Tensor, router: Router, layer: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(output, scores, selected) for the (T, d) tokens ``x``."""
        scores = self.scores(x)
        with torch.no_grad():
            selected = router.select(scores.detach(), layer)
        gates = gate_weights(scores, selected)
        top_k = selected.shape[1]
        experts = selected.reshape(-1)
        tokens = torch.arange(experts.numel(), device=x.device) // top_k
        kept = experts >= 0
        experts, tokens, weights = experts[kept], tokens[kept], gates.reshape(-1)[kept]
        experts, order = torch.sort(experts, stable=True)
        tokens, weights = tokens[order], weights[order]
        counts = torch.bincount(experts, minlength=self.n_experts).tolist()
        out = torch.zeros_like(x)
        start = 0
        for i, count in enumerate(counts):
            if count:
                rows = tokens[start : start + count]
                h = F.gelu(x[rows] @ self.w_in[i]) @ self.w_out[i]
                out.index_add_(0, rows, h * weights[start : start + count, None])
                start += count
        return out, scores, selected


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, n_experts: int, hidden: int, gate: str):
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        self.moe = MoEFeedForward(d_model, n_experts, hidden, gate)

    def forward(
        self, x: torch.Tensor, router: Router, layer: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        heads = [t.view(batch, length, self.n_heads, -1).transpose(1, 2) for t in (q, k, v)]
        attn = F.scaled_dot_product_attention(*heads, is_causal=True)
        x = x + self.proj(attn.transpose(1, 2).reshape(batch, length, d))
        out, scores, selected = self.moe(self.ln2(x).reshape(-1, d), router, layer)
        return x + out.view(batch, length, d), scores, selected


class MoELanguageModel(nn.Module):
    """Token + position embeddings, ``n_layers`` MoE blocks, tied output head."""

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        n_experts: int,
        hidden: int,
        gate: str,
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Parameter(torch.empty(seq_len, d_model))
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, n_experts, hidden, gate) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)

    def initialise(self, generator: torch.Generator, std: float = 0.02) -> None:
        """Normal(0, std) weights (output projections std / sqrt(2 n_layers)), unit LayerNorms."""
        scaled = std / math.sqrt(2 * len(self.blocks))
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1:
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                else:
                    sd = scaled if name.endswith(("proj.weight", "w_out")) else std
                    p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * sd)

    def forward(
        self, idx: torch.Tensor, router: Router
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """(logits (B, L, V), per-layer scores, per-layer selections) for token ids (B, L)."""
        x = self.tokens(idx) + self.positions[: idx.shape[1]]
        scores, selected = [], []
        for layer, block in enumerate(self.blocks):
            x, s, sel = block(x, router, layer)
            scores.append(s)
            selected.append(sel)
        logits = self.ln_f(x) @ self.tokens.weight.T
        return logits, scores, selected
