"""``moe_lm``: a small mixture-of-experts character-level language model on tiny Shakespeare.

The problem owns the data (the corpus, its train/validation split, the training batches), the
model definition (``model.MoELanguageModel``: architecture and seeded initialisation) and the
scoring; the algorithm owns the training (``optbench.algorithms.routing.trainer``) and the
balancing, and proposes ``RoutingSolution(router, model)``. One runner step is one training step
on ``batch_size`` sequences of ``seq_len`` characters. Every algorithm run with the same seed sees
the same initial model and the same batches.

``evaluate`` (no gradient, on ``val_tokens`` characters of the validation split, in batches of the
training size): ``val_loss`` (nats per character), ``val_ppl`` = exp(val_loss), ``maxvio_global``
(Wang et al. 2024: MaxVio of the loads summed over the validation set, averaged over the MoE
layers; ``maxvio_global_max`` the worst layer; ``maxvio_global_floor`` the same measurement for a
router with exactly balanced expected loads on as many independent tokens, its sampling floor,
see ``optbench.problems.routing.balance``), ``maxvio_heldout`` (mean per-batch MaxVio on the
validation batches), ``idle_experts`` (experts with no validation token, mean over layers),
``dropped``; and from the training history that ``forward`` records, ``maxvio_batch`` and
``train_loss``, their means over the training batches since the previous evaluation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError, DataError
from optbench.contracts.routing_stream import (
    Gate,
    RoutedBatch,
    Router,
    RoutingSolution,
    RoutingStreamProblem,
    expert_loads,
    max_violation,
)
from optbench.problems.moe_lm import data
from optbench.problems.moe_lm.model import MoELanguageModel
from optbench.problems.routing.balance import balanced_floor


class MoELanguageModelProblem(RoutingStreamProblem):
    """Train a character-level MoE transformer; the router is learnable.

    Args:
        data: ``tinyshakespeare`` (vendored) or a path to a UTF-8 text file.
        val_fraction: the last fraction of the characters held out for validation.
        seq_len, batch_size: characters per sequence and sequences per training batch.
        d_model, n_layers, n_heads: transformer sizes (every layer's feed-forward is MoE).
        n_experts, top_k, expert_hidden, gate: N experts of hidden size ``expert_hidden``,
            K per token, ``sigmoid`` or ``softmax`` router scores.
        val_tokens: validation characters evaluated (0: the whole validation split).
    """

    headline = ("val_ppl", "min")

    learnable_router = True

    def __init__(
        self,
        data: str = "tinyshakespeare",
        val_fraction: float = 0.1,
        seq_len: int = 64,
        batch_size: int = 32,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        n_experts: int = 8,
        top_k: int = 2,
        expert_hidden: int = 128,
        gate: Gate = "sigmoid",
        val_tokens: int = 32768,
    ) -> None:
        super().__init__()
        if not 0 < val_fraction < 1:
            raise ConfigError(f"val_fraction: must be in (0, 1), got {val_fraction}")
        for name, value in (
            ("seq_len", seq_len),
            ("batch_size", batch_size),
            ("d_model", d_model),
            ("n_layers", n_layers),
            ("n_heads", n_heads),
            ("expert_hidden", expert_hidden),
        ):
            if value < 1:
                raise ConfigError(f"{name}: must be >= 1, got {value}")
        if d_model % n_heads:
            raise ConfigError(f"n_heads: must divide d_model={d_model}, got {n_heads}")
        if n_experts < 2:
            raise ConfigError(f"n_experts: must be >= 2, got {n_experts}")
        if not 1 <= top_k < n_experts:
            raise ConfigError(f"top_k: must be in [1, n_experts={n_experts}), got {top_k}")
        if val_tokens < 0:
            raise ConfigError(f"val_tokens: must be >= 0, got {val_tokens}")
        self.data, self.val_fraction = data, val_fraction
        self.seq_len, self.batch_size = seq_len, batch_size
        self.d_model, self.n_layers, self.n_heads = d_model, n_layers, n_heads
        self.n_experts, self.top_k, self.expert_hidden = n_experts, top_k, expert_hidden
        self.gate, self.val_tokens = gate, val_tokens

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        corpus = data.load(self.data, ctx.data_dir)
        split = int(len(corpus.ids) * (1 - self.val_fraction))
        if min(split, len(corpus.ids) - split) < self.seq_len + 2:
            raise DataError(
                f"{corpus.path}: {len(corpus.ids)} characters are too few for seq_len="
                f"{self.seq_len} with val_fraction={self.val_fraction}"
            )
        ids = torch.as_tensor(corpus.ids, device=ctx.device)
        self.train_ids, self.val_ids = ids[:split], ids[split:]
        self.vocab = corpus.vocab
        self.device, self.dtype = ctx.device, ctx.dtype
        self._model_seed = ctx.problem_random.child("model").integer_seed()
        self._batches = ctx.problem_random.child("batches").torch
        available = (len(self.val_ids) - 1) // self.seq_len
        n_val = available if self.val_tokens == 0 else max(1, self.val_tokens // self.seq_len)
        n_val = min(n_val, available)
        last = len(self.val_ids) - self.seq_len - 1
        self._val_starts = torch.linspace(0, last, n_val, device=ctx.device).long()
        floor_seed = ctx.problem_random.child("balance floor").integer_seed()
        self.floor = balanced_floor(self.n_experts, self.top_k, n_val * self.seq_len, floor_seed)
        self._history: dict[str, list[float]] = {"maxvio": [], "loss": []}
        self._since_eval = 0
        self._facts = {
            "source": str(corpus.path),
            "sha256": corpus.sha256,
            "vocab_size": len(self.vocab),
            "train_chars": split,
            "val_chars": len(corpus.ids) - split,
            "val_tokens_evaluated": n_val * self.seq_len,
        }

    def describe(self) -> dict[str, Any]:
        model = self.init_model()
        n_params = sum(p.numel() for p in model.parameters())
        expert = sum(
            p.numel() for n, p in model.named_parameters() if n.endswith(("w_in", "w_out"))
        )
        active = n_params - expert + expert * self.top_k // self.n_experts
        return {**self._facts, "parameters": n_params, "active_parameters": active}

    def init_model(self) -> MoELanguageModel:
        model = MoELanguageModel(
            len(self.vocab),
            self.seq_len,
            self.d_model,
            self.n_layers,
            self.n_heads,
            self.n_experts,
            self.expert_hidden,
            self.gate,
        )
        model.initialise(torch.Generator().manual_seed(self._model_seed))
        return model.to(device=self.device, dtype=self.dtype)

    # -- the stream ------------------------------------------------------------------------------
    def _windows(self, ids: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        offsets = starts[:, None] + torch.arange(self.seq_len + 1, device=ids.device)
        window = ids[offsets]
        return window[:, :-1], window[:, 1:]

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), each (batch_size, seq_len), from random training windows."""
        high = len(self.train_ids) - self.seq_len - 1
        starts = torch.randint(
            high, (self.batch_size,), generator=self._batches, device=self.device
        )
        self.counters["batches"] += 1
        self.counters["tokens"] += self.batch_size * self.seq_len
        return self._windows(self.train_ids, starts)

    def forward(
        self, batch: Any, router: Router, model: torch.nn.Module | None = None
    ) -> RoutedBatch:
        if model is None:
            raise ValueError("moe_lm: forward needs the model (the router is learnable)")
        inputs, targets = batch
        logits, scores, selected = model(inputs, router)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        with torch.no_grad():  # the online record of the training batch (``maxvio_batch``)
            self._history["maxvio"].append(float(max_violation(self._loads(selected)).mean()))
            self._history["loss"].append(float(loss.detach()))
        return RoutedBatch(scores=scores, selected=selected, loss=loss)

    def _loads(self, selected: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([expert_loads(sel, self.n_experts) for sel in selected])

    # -- scoring ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, solution: RoutingSolution) -> dict[str, float]:
        model = solution.model
        if model is None:
            raise ValueError("moe_lm: the solution has no model")
        total_loads = torch.zeros(
            self.n_layers, self.n_experts, dtype=torch.float64, device=self.device
        )
        nats, count, batch_maxvio, dropped, assignments = 0.0, 0, [], 0.0, 0
        for chunk in torch.split(self._val_starts, self.batch_size):
            inputs, targets = self._windows(self.val_ids, chunk)
            logits, _, selected = model(inputs, solution.router)
            nats += float(
                F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]).double(),
                    targets.reshape(-1),
                    reduction="sum",
                )
            )
            count += targets.numel()
            loads = self._loads(selected)
            total_loads += loads
            batch_maxvio.append(float(max_violation(loads).mean()))
            dropped += sum(float((sel < 0).sum()) for sel in selected)
            assignments += sum(sel.numel() for sel in selected)
        per_layer = max_violation(total_loads)
        val_loss = nats / count
        metrics = {
            "val_loss": val_loss,
            "val_ppl": math.exp(val_loss),
            "maxvio_global": float(per_layer.mean()),
            "maxvio_global_max": float(per_layer.max()),
            "maxvio_global_floor": self.floor,
            "maxvio_heldout": sum(batch_maxvio) / len(batch_maxvio),
            "idle_experts": float((total_loads == 0).sum()) / self.n_layers,
            "dropped": dropped / assignments,
        }
        served = len(self._history["maxvio"])
        if served > self._since_eval:
            recent = slice(self._since_eval, served)
            window = self._history["maxvio"][recent]
            metrics["maxvio_batch"] = sum(window) / len(window)
            losses = self._history["loss"][recent]
            if losses:
                metrics["train_loss"] = sum(losses) / len(losses)
            self._since_eval = served
        return metrics
