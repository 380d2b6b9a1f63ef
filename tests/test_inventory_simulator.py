"""The batched inventory simulator against a plain Python loop, its gradients against finite
differences, its samples' determinism, and the policy networks' structural properties."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from optbench.algorithms.inventory.networks import SymmetricNetwork, VanillaMLP
from optbench.contracts.inventory import Observation
from optbench.problems.inventory import demand as demand_module
from optbench.problems.inventory.heuristics import BaseStock, CappedBaseStock, EchelonStock
from tests.inventory_support import make_problem, python_simulation

CASES = {
    "backlog_L0": dict(store_lead_time=0),
    "backlog_L3": dict(store_lead_time=3, underage_cost=4.0),
    "lost_L0": dict(store_lead_time=0, lost_sales=True),
    "lost_L2_poisson": dict(store_lead_time=2, lost_sales=True, demand_law="poisson"),
    "serial_3": dict(  # upstream nodes start with stock on hand and in transit
        store_lead_time=2,
        upstream_lead_times=[1, 0],
        upstream_holding_costs=[0.5, 0.2],
        upstream_initial="uniform",
    ),
    "warehouse_3_stores": dict(
        n_stores=3,
        lost_sales=True,
        demand_correlation=0.5,
        demand_mean_range=[2.5, 7.5],
        demand_cv_range=[0.25, 0.5],
        holding_cost_range=[0.7, 1.3],
        underage_cost_range=[6.3, 11.7],
        store_lead_time_range=[0, 2],
        instance_seed=3,
        upstream_lead_times=[2],
        upstream_holding_costs=[0.3],  # the warehouse starts empty (upstream_initial=zero)
    ),
}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("echelon", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_simulator_matches_python_loop(tmp_path: Path, case: str, echelon: bool) -> None:
    problem = make_problem(tmp_path, **CASES[case])
    spec = problem.spec
    mean = spec.demand_mean
    lead = torch.tensor(spec.store_lead_times, dtype=mean.dtype)
    # levels that run the stores short now and then, and the upstream nodes too
    store_levels = ((lead + 1) * mean * 0.9).tolist()
    if echelon:
        upstream_levels = [float(mean.sum()) * (6 + 2 * k) for k in range(spec.n_upstream)]
        policy = EchelonStock(spec, "levels")
        unit = [s / m for s, m in zip(store_levels, mean.tolist(), strict=True)]
        unit += [u / float(mean.sum()) for u in upstream_levels]
    else:
        upstream_levels = [float(mean.sum()) * 1.5 for _ in range(spec.n_upstream)]
        policy = BaseStock(spec)
        unit = [s / m for s, m in zip(store_levels, mean.tolist(), strict=True)]
        unit += [u / float(mean.sum()) for u in upstream_levels]
    with torch.no_grad():
        policy.theta.copy_(torch.tensor(unit, dtype=mean.dtype))
    expected = torch.tensor(
        python_simulation(problem, "train", store_levels, upstream_levels, echelon),
        dtype=mean.dtype,
    )
    sim = problem.simulate(policy, "train", keep_periods=True)
    assert sim.period_costs is not None
    torch.testing.assert_close(sim.period_costs, expected, rtol=1e-12, atol=1e-12)
    warmup = problem.splits["train"].warmup
    torch.testing.assert_close(sim.cost, expected[:, warmup:].mean(1), rtol=1e-12, atol=1e-12)
    assert problem.counters["simulations"] == 1
    assert problem.counters["sample_periods"] == 64 * 12


def test_rationing_happens_in_the_warehouse_case(tmp_path: Path) -> None:
    """The warehouse case above must exercise proportional rationing (else it tests little)."""
    problem = make_problem(tmp_path, **CASES["warehouse_3_stores"])
    policy = BaseStock(problem.spec)
    shortages = []

    def watching(obs: Observation) -> torch.Tensor:
        requests = policy(obs)
        shortages.append(
            float((requests[:, :3].sum(-1) > obs.upstream_on_hand[:, 0]).float().mean())
        )
        return requests

    problem.simulate(watching, "train")
    assert 0.05 < sum(shortages) / len(shortages) < 0.95


@pytest.mark.parametrize(
    ("case", "family"),
    [("backlog_L3", BaseStock), ("lost_L0", CappedBaseStock), ("serial_3", EchelonStock)],
)
def test_pathwise_gradient_matches_finite_differences(tmp_path: Path, case: str, family) -> None:
    problem = make_problem(tmp_path, **CASES[case])
    policy = family(problem.spec)
    with torch.no_grad():  # distinct levels: equal echelon levels are a kink of the cost
        steps = torch.arange(1, policy.theta.numel() + 1, dtype=policy.theta.dtype)
        policy.theta.mul_(1.1).add_(0.05 * steps)
    cost = problem.simulate(policy, "train").cost.mean()
    (grad,) = torch.autograd.grad(cost, policy.theta)
    eps = 1e-6
    for j in range(policy.theta.numel()):
        with torch.no_grad():
            policy.theta[j] += eps
            up = float(problem.simulate(policy, "train").cost.mean())
            policy.theta[j] -= 2 * eps
            down = float(problem.simulate(policy, "train").cost.mean())
            policy.theta[j] += eps
        assert grad[j].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-7)
    assert grad.abs().sum() > 0


def test_network_gradient_matches_finite_differences(tmp_path: Path) -> None:
    problem = make_problem(tmp_path, **CASES["serial_3"])
    torch.manual_seed(0)
    policy = VanillaMLP(problem.spec, hidden=[8, 8]).double()
    weight = policy.net[0].weight
    cost = problem.simulate(policy, "train").cost.mean()
    (grad,) = torch.autograd.grad(cost, weight)
    eps = 1e-6
    for index in [(0, 0), (3, 1), (7, 2)]:
        with torch.no_grad():
            weight[index] += eps
            up = float(problem.simulate(policy, "train").cost.mean())
            weight[index] -= 2 * eps
            down = float(problem.simulate(policy, "train").cost.mean())
            weight[index] += eps
        assert grad[index].item() == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8)


def test_splits_are_fixed_by_the_seed(tmp_path: Path) -> None:
    a = make_problem(tmp_path, seed=1)
    b = make_problem(tmp_path, seed=1)
    c = make_problem(tmp_path, seed=2)
    for split in ("train", "dev", "test"):
        assert torch.equal(a.splits[split].demand, b.splits[split].demand)
        assert torch.equal(
            a.splits[split].initial.store_on_hand, b.splits[split].initial.store_on_hand
        )
        assert not torch.equal(a.splits[split].demand, c.splits[split].demand)
    assert not torch.equal(a.splits["train"].demand[:16], a.splits["test"].demand)


def test_streamed_split_is_reproducible_and_chunking_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demand_module, "STORE_LIMIT", 100)
    monkeypatch.setattr(demand_module, "CHUNK_PERIODS", 5)
    problem = make_problem(tmp_path, store_lead_time=2)
    split = problem.splits["test"]
    assert split.demand is None
    chunks = list(split.chunks())
    assert [c.shape[1] for c in chunks] == [5, 5, 2]
    assert torch.equal(torch.cat(chunks, 1), torch.cat(list(split.chunks()), 1))
    policy = BaseStock(problem.spec)
    whole = problem.dynamics.run(policy, split.initial, [torch.cat(chunks, 1)], split.warmup)
    streamed = problem.simulate(policy, "test")
    torch.testing.assert_close(streamed.cost, whole.cost, rtol=0, atol=0)


def test_demand_laws_have_their_moments(tmp_path: Path) -> None:
    normal = make_problem(
        tmp_path,
        n_stores=2,
        demand_std=2.0,
        demand_correlation=0.5,
        train_samples=20000,
        train_periods=4,
        train_warmup=0,
    )
    d = normal.splits["train"].demand.reshape(-1, 2)
    assert d.min() >= 0
    # clipping at 0 is rare for N(5, 2): the moments are those of the normal within noise
    assert d.mean(0).tolist() == pytest.approx([5.0, 5.0], abs=0.03)
    assert d.std(0).tolist() == pytest.approx([2.0, 2.0], abs=0.03)
    assert torch.corrcoef(d.T)[0, 1].item() == pytest.approx(0.5, abs=0.02)
    poisson = make_problem(
        tmp_path, demand_law="poisson", train_samples=20000, train_periods=4, train_warmup=0
    )
    d = poisson.splits["train"].demand
    assert torch.equal(d, d.round())
    assert d.mean().item() == pytest.approx(5.0, abs=0.03)
    assert d.var().item() == pytest.approx(5.0, abs=0.1)


def test_symmetric_network_is_permutation_equivariant(tmp_path: Path) -> None:
    problem = make_problem(
        tmp_path,
        **{**CASES["warehouse_3_stores"], "n_stores": 5, "store_lead_time_range": [2, 3]},
    )
    torch.manual_seed(0)
    net = SymmetricNetwork(problem.spec).double()
    B, n = 7, 5
    obs = Observation(
        torch.rand(B, n, dtype=torch.float64) * 5,
        torch.rand(B, n, 2, dtype=torch.float64) * 5,
        torch.rand(B, 1, dtype=torch.float64) * 20,
        (torch.rand(B, 1, dtype=torch.float64) * 20,),
        0,
    )
    perm = torch.tensor([3, 0, 4, 1, 2])
    spec = problem.spec
    permuted_spec = type(spec)(
        **{
            **spec.__dict__,
            "store_lead_times": tuple(spec.store_lead_times[i] for i in perm.tolist()),
            "store_holding_costs": spec.store_holding_costs[perm],
            "store_underage_costs": spec.store_underage_costs[perm],
            "demand_mean": spec.demand_mean[perm],
            "demand_std": spec.demand_std[perm],
        }
    )
    permuted_net = SymmetricNetwork(permuted_spec).double()
    permuted_net.load_state_dict(
        {k: v for k, v in net.state_dict().items() if k != "primitives"}, strict=False
    )
    permuted_obs = Observation(
        obs.store_on_hand[:, perm],
        obs.store_pipeline[:, perm],
        obs.upstream_on_hand,
        obs.upstream_pipeline,
        0,
    )
    out, permuted_out = net(obs), permuted_net(permuted_obs)
    torch.testing.assert_close(permuted_out[:, :n], out[:, perm], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(permuted_out[:, n:], out[:, n:], rtol=1e-12, atol=1e-12)


def test_softmax_allocation_is_always_feasible(tmp_path: Path) -> None:
    problem = make_problem(tmp_path, **CASES["warehouse_3_stores"])
    torch.manual_seed(0)
    net = VanillaMLP(problem.spec).double()
    assert net.allocation == "softmax"
    slack = []

    def watching(obs: Observation) -> torch.Tensor:
        requests = net(obs)
        slack.append(float((obs.upstream_on_hand[:, 0] - requests[:, :3].sum(-1)).min().detach()))
        return requests

    problem.simulate(watching, "train")
    assert min(slack) >= -1e-12


def test_fraction_allocation_ships_a_share_of_each_suppliers_stock(tmp_path: Path) -> None:
    """The authors' serial network: every node's order is a fraction of its supplier's on hand
    (never rationed), the top node's at most 4 x mean demand; at the start, half of it."""
    problem = make_problem(tmp_path, **CASES["serial_3"])
    torch.manual_seed(0)
    net = VanillaMLP(problem.spec).double()
    assert net.allocation == "fraction"
    shares = []

    def watching(obs: Observation) -> torch.Tensor:
        orders = net(obs)
        supply = torch.cat([obs.upstream_on_hand, torch.full_like(orders[:, :1], 4 * 5.0)], -1)
        shares.append((orders / supply).detach()[supply > 0])
        return orders

    problem.simulate(watching, "train")
    share = torch.cat(shares)
    assert float(share.min()) >= 0 and float(share.max()) <= 1
    assert float(shares[0].mean()) == pytest.approx(0.5, abs=0.05)


def test_rationing_never_divides_zero_by_zero() -> None:
    from optbench.problems.inventory.dynamics import _fill_rate

    available = torch.tensor([-1e-7, 0.0, 2.0, 2.0, 3.0], requires_grad=True)
    asked = torch.tensor([0.0, 0.0, 4.0, 1.0, 0.0], requires_grad=True)
    fill = _fill_rate(available, asked)
    assert fill.tolist() == [1.0, 1.0, 0.5, 1.0, 1.0]
    fill.sum().backward()
    assert torch.isfinite(available.grad).all() and torch.isfinite(asked.grad).all()


@pytest.mark.parametrize("upstream", ["zero", "uniform"])
def test_upstream_initial_state(tmp_path: Path, upstream: str) -> None:
    """``zero``: upstream nodes start empty with nothing in transit (the authors'); ``uniform``:
    U[0, 1] x the total mean demand in every slot. Stores start the same way under both."""
    case = dict(CASES["serial_3"], upstream_lead_times=[2, 3], upstream_initial=upstream)
    initial = make_problem(tmp_path, **case).splits["train"].initial
    stock = torch.cat([*initial.upstream_pipeline, torch.stack(initial.upstream_on_hand, -1)], -1)
    assert stock.shape == (64, 2 + 3 + 2)
    if upstream == "zero":
        assert float(stock.abs().max()) == 0
    else:
        assert float(stock.min()) >= 0 and float(stock.max()) <= 5.0
        assert float(stock.mean()) == pytest.approx(2.5, abs=0.25)
    assert float(initial.store_on_hand.min()) > 0
