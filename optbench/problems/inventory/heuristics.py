"""Parametric heuristic policies, differentiable in their parameters.

Each is a ``ParametricPolicy``: a flat vector ``theta`` with box bounds, so a search method can
tune it coordinate by coordinate and HDPO can tune it by gradient (Alvo, Russo and Kanoria tune
their benchmark heuristics the same way). Levels are stored in units of the mean demand a node
serves per period, so one learning rate suits every instance.

- ``BaseStock``: every node orders up to a level on its installation inventory position,
  q_j = (S_j - IP_j)^+ (optimal for one store with backlogging).
- ``CappedBaseStock``: stores order min((S_i - IP_i)^+, c_i) (Xin 2021, "Understanding the
  performance of capped base-stock policies in lost-sales inventory models", Oper. Res. 69(1));
  upstream nodes base-stock.
- ``EchelonStock``: stores base-stock on their own position; upstream node k orders up to E_k
  on its echelon position (its own on hand and pipeline plus those of every node below it).
  For a serial system with backlogging this is the Clark-Scarf optimal form (Clark and Scarf
  1960); for one warehouse and many stores it is the usual echelon heuristic.
  ``parametrisation="quantile"`` (``auto`` with several stores; ``levels`` with one) uses
  1 + n_upstream numbers instead of one level per node: store i orders up to
  (L_i+1) mu_i + (z_i + delta) sigma_i sqrt(L_i+1), z_i the newsvendor quantile
  Phi^-1(p_i / (p_i + h_i)), and upstream node k up to m_k + z_k s_k, with m_k, s_k the mean and
  standard deviation (independence approximation) of the demand over its echelon lead time.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from scipy import stats

from optbench.contracts.errors import ConfigError
from optbench.contracts.inventory import InventorySpec, Observation, ParametricPolicy

FAMILIES = ("base_stock", "capped_base_stock", "echelon_stock")
PARAMETRISATIONS = ("auto", "levels", "quantile")


def _tensor(spec: InventorySpec, values: Any) -> torch.Tensor:
    ref = spec.demand_mean
    return torch.as_tensor(values, dtype=ref.dtype, device=ref.device)


class _Levels:
    """Scales and default levels of every node, in units of the mean demand it serves."""

    def __init__(self, spec: InventorySpec) -> None:
        mean, std = spec.demand_mean, spec.demand_std
        lead = _tensor(spec, spec.store_lead_times)
        self.total = mean.sum()
        self.store_scale = mean
        self.up_scale = self.total.expand(spec.n_upstream)
        # default store level: mean lead-time demand (protection interval L + 1)
        self.store_mean = lead + 1
        cv = (std / mean).max()
        self.store_high = (lead + 1) + 8 * cv * (lead + 1).sqrt() + 2
        cum = torch.cumsum(_tensor(spec, spec.upstream_lead_times), 0)
        weights = mean / self.total
        # echelon k: mean demand over store lead + upstream lead times up to k, per unit of total
        self.echelon_mean = (
            torch.stack([(weights * (lead + 1 + c)).sum() for c in cum])
            if spec.n_upstream
            else _tensor(spec, [])
        )
        self.echelon_high = self.echelon_mean * 2 + 8


class BaseStock(ParametricPolicy):
    """q_j = (S_j - IP_j)^+ for every node j (installation inventory positions)."""

    def __init__(self, spec: InventorySpec) -> None:
        super().__init__()
        self.spec = spec
        self.lv = _Levels(spec)
        init = torch.cat([self.lv.store_mean, (_tensor(spec, spec.upstream_lead_times) + 1)])
        self.theta = torch.nn.Parameter(init.clone())

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        high = torch.cat(
            [self.lv.store_high, _tensor(self.spec, self.spec.upstream_lead_times) * 2 + 8]
        )
        return torch.zeros_like(high), high

    def levels(self) -> torch.Tensor:
        return self.theta * torch.cat([self.lv.store_scale, self.lv.up_scale])

    def forward(self, obs: Observation) -> torch.Tensor:
        position = torch.cat([obs.store_position(), obs.upstream_position()], -1)
        return torch.relu(self.levels() - position)

    def describe(self) -> dict[str, Any]:
        return {"levels": _rounded(self.levels())}


class CappedBaseStock(ParametricPolicy):
    """Stores: q_i = min((S_i - IP_i)^+, c_i); upstream nodes: base-stock."""

    def __init__(self, spec: InventorySpec) -> None:
        super().__init__()
        self.spec = spec
        self.lv = _Levels(spec)
        n = spec.n_stores
        caps = torch.full((n,), 2.0, dtype=spec.demand_mean.dtype, device=spec.demand_mean.device)
        up = _tensor(self.spec, spec.upstream_lead_times) + 1
        self.theta = torch.nn.Parameter(torch.cat([self.lv.store_mean, caps, up]))

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.spec.n_stores
        up = _tensor(self.spec, self.spec.upstream_lead_times) * 2 + 8
        high = torch.cat([self.lv.store_high, torch.full_like(self.lv.store_high, 6.0), up])
        low = torch.zeros_like(high)
        low[n : 2 * n] = 0.05
        return low, high

    def forward(self, obs: Observation) -> torch.Tensor:
        n = self.spec.n_stores
        scale = self.lv.store_scale
        level, cap = self.theta[:n] * scale, self.theta[n : 2 * n] * scale
        stores = torch.minimum(torch.relu(level - obs.store_position()), cap)
        up = torch.relu(self.theta[2 * n :] * self.lv.up_scale - obs.upstream_position())
        return torch.cat([stores, up], -1)

    def describe(self) -> dict[str, Any]:
        n, scale = self.spec.n_stores, self.lv.store_scale
        return {
            "levels": _rounded(self.theta[:n] * scale),
            "caps": _rounded(self.theta[n : 2 * n] * scale),
            "upstream_levels": _rounded(self.theta[2 * n :] * self.lv.up_scale),
        }


class EchelonStock(ParametricPolicy):
    """Stores base-stock on their own position; upstream node k echelon base-stock."""

    def __init__(self, spec: InventorySpec, parametrisation: str = "auto") -> None:
        super().__init__()
        if parametrisation not in PARAMETRISATIONS:
            known = ", ".join(PARAMETRISATIONS)
            raise ConfigError(f"parametrisation: unknown '{parametrisation}' (known: {known})")
        self.spec = spec
        self.lv = _Levels(spec)
        if parametrisation == "auto":  # one level per node for a chain, quantiles for many stores
            parametrisation = "levels" if spec.n_stores == 1 else "quantile"
        self.parametrisation = parametrisation
        if parametrisation == "levels":
            init = torch.cat([self.lv.store_mean, self.lv.echelon_mean])
        else:
            init = torch.zeros(1 + spec.n_upstream, dtype=spec.demand_mean.dtype)
            init = init.to(spec.demand_mean.device)
            ratio = spec.store_underage_costs / (
                spec.store_underage_costs + spec.store_holding_costs
            )
            self.z_store = _tensor(spec, stats.norm.ppf(ratio.cpu().numpy()))
            lead = _tensor(spec, spec.store_lead_times)
            cum = torch.cumsum(_tensor(spec, spec.upstream_lead_times), 0)
            var = spec.demand_std**2
            self.store_sd = spec.demand_std * (lead + 1).sqrt() / spec.demand_mean
            self.echelon_sd = (
                torch.stack([(var * (lead + 1 + c)).sum().sqrt() for c in cum]) / self.lv.total
                if spec.n_upstream
                else _tensor(spec, [])
            )
        self.theta = torch.nn.Parameter(init.clone())

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.parametrisation == "levels":
            high = torch.cat([self.lv.store_high, self.lv.echelon_high])
            return torch.zeros_like(high), high
        low = torch.full_like(self.theta, -4.0)
        high = torch.full_like(self.theta, 6.0)
        low[0], high[0] = -3.0, 3.0
        return low, high

    def unit_levels(self) -> torch.Tensor:
        """Store levels (units of mu_i) and echelon levels (units of the total mean)."""
        if self.parametrisation == "levels":
            return self.theta
        stores = self.lv.store_mean + (self.z_store + self.theta[0]) * self.store_sd
        echelons = self.lv.echelon_mean + self.theta[1:] * self.echelon_sd
        return torch.cat([stores, echelons])

    def forward(self, obs: Observation) -> torch.Tensor:
        n = self.spec.n_stores
        unit = self.unit_levels()
        store_position = obs.store_position()
        stores = torch.relu(unit[:n] * self.lv.store_scale - store_position)
        if self.spec.n_upstream == 0:
            return stores
        echelon = store_position.sum(-1, keepdim=True) + torch.cumsum(obs.upstream_position(), -1)
        up = torch.relu(unit[n:] * self.lv.total - echelon)
        return torch.cat([stores, up], -1)

    def describe(self) -> dict[str, Any]:
        n, unit = self.spec.n_stores, self.unit_levels()
        return {
            "store_levels": _rounded(unit[:n] * self.lv.store_scale),
            "echelon_levels": _rounded(unit[n:] * self.lv.total),
        }


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(float(v), 4) for v in values.detach().cpu()]


def heuristic_policy(
    spec: InventorySpec,
    family: Literal["auto", "base_stock", "capped_base_stock", "echelon_stock"] = "auto",
    parametrisation: Literal["auto", "levels", "quantile"] = "auto",
) -> ParametricPolicy:
    """The parametric policy ``family`` for ``spec`` (``auto``: the network's natural one)."""
    if family == "auto":
        family = spec.heuristic
    if family == "base_stock":
        return BaseStock(spec)
    if family == "capped_base_stock":
        return CappedBaseStock(spec)
    if family == "echelon_stock":
        return EchelonStock(spec, parametrisation)
    raise ConfigError(f"family: unknown heuristic '{family}' (known: auto, {', '.join(FAMILIES)})")
