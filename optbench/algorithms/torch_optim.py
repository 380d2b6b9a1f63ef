"""torch.optim's one-off import, paid before a run's clock starts.

torch wraps ``Optimizer.add_param_group`` in ``torch._disable_dynamo``, which imports
``torch._dynamo`` the first time a process builds an optimizer: 1.2 s on the 2-core development
machine, where five SGD steps on a small problem take 5 ms. Built inside ``run``, the first
optimizer of each process put that import into its run's first step and ``time_s`` (a single
5-step SGD run reported ``time=1.17s``). An algorithm that builds a ``torch.optim`` optimizer
calls ``preload()`` from its ``warm_up`` (``Algorithm.warm_up``: the runner calls it before the
clock starts; not from the constructor, which a sweep also calls to read what a job needs).
"""

from __future__ import annotations


def preload() -> None:
    """Import what building the first ``torch.optim`` optimizer of a process imports."""
    import torch._dynamo  # noqa: F401
