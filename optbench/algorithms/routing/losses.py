"""The auxiliary load-balancing loss (as in Wang et al. 2024; after Fedus et al. 2022).

    L_balance = alpha sum_i f_i P_i,   f_i = N / (K T) sum_t 1[token t selects expert i],
                                       P_i = (1 / T) sum_t s_{i,t}

over the T tokens of a batch, per routed layer (summed over layers). f is a count (no gradient);
the gradient flows into the router through P, pushing probability mass away from the experts
that received more than their share. With fixed scores it has no gradient to act on.

By default P uses the raw scores, the classic form of Wang et al. (2024, eq. 2-3; Fedus et al.
2022), the baseline their paper compares with. ``normalize`` (an option): P uses each token's
scores normalised over the experts, s_{i,t} / sum_j s_{j,t}, as the DeepSeek-V3 technical report
(2024) does in its sequence-wise balance loss for a sigmoid gate. For softmax scores this changes
nothing; for sigmoid scores the classic formula's gradient mostly shrinks *every* score (which
are also the gates) instead of moving mass between experts: in a 150-step tiny ``moe_lm`` run
(alpha = 0.01, 2 seeds) it left MaxVio_global at 2.3-2.4 with an expert idle, against 0.7-1.0
normalised.
"""

from __future__ import annotations

import torch

from optbench.contracts.routing_stream import expert_loads


def auxiliary_loss(
    scores: torch.Tensor, selected: torch.Tensor, top_k: int, normalize: bool = False
) -> torch.Tensor:
    """sum_i f_i P_i for one layer's (T, N) scores and (T, K) selection (alpha not applied)."""
    n_tokens, n_experts = scores.shape
    counts = expert_loads(selected, n_experts).to(scores.dtype)
    f = counts * n_experts / (top_k * n_tokens)
    if normalize:
        scores = scores / scores.sum(dim=1, keepdim=True)
    p = scores.mean(dim=0)
    return (f * p).sum()
