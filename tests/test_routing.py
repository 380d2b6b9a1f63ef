"""The routing family: the LP oracle vs brute force, ALF-LB's deterministic properties (Han and
Zhong 2025) on a repeated batch, the auxiliary loss vs a hand computation, capacity dropping vs a
plain queue, the stream generator, and runs end to end through the runner and the CLI."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from optbench.algorithms.routing import AlfLb, AuxLoss, CapacityDrop, GreedyTopK, OptimalAssignment
from optbench.algorithms.routing.losses import auxiliary_loss
from optbench.algorithms.routing.routers import BiasedRouter, CapacityRouter, GreedyRouter
from optbench.contracts.context import RunContext
from optbench.contracts.errors import CompatibilityError
from optbench.contracts.routing_stream import (
    RoutedBatch,
    RoutingSolution,
    expert_loads,
    max_violation,
)
from optbench.platform.cache import DiskCache
from optbench.platform.runner import execute
from optbench.platform.tracking import RunStatus, make_tracker
from optbench.problems.routing import RoutingStream
from optbench.problems.routing.assignment import dual_function, optimal_assignment
from optbench.problems.routing.balance import balanced_floor
from tests.conftest import compose

pytestmark = pytest.mark.usefixtures("one_thread")


def context(tmp_path: Path, steps: int = 100, seed: int = 0) -> RunContext:
    return RunContext.create(seed, max_steps=steps, cache=DiskCache(tmp_path / "cache"))


def stream(tmp_path: Path, seed: int = 0, **config: object) -> tuple[RoutingStream, RunContext]:
    problem = RoutingStream(**config)  # type: ignore[arg-type]
    ctx = context(tmp_path, seed=seed)
    problem.setup(ctx)
    return problem, ctx


# -- the exact reference ---------------------------------------------------------------------------
def brute_force(s: np.ndarray, top_k: int, cap: int) -> float:
    """The best routing by enumerating every choice of K experts for every token."""
    n_tokens, n_experts = s.shape
    subsets = list(itertools.combinations(range(n_experts), top_k))
    best = -math.inf
    for choice in itertools.product(subsets, repeat=n_tokens):
        loads = np.bincount(np.concatenate(choice), minlength=n_experts)
        if loads.max() <= cap:
            best = max(best, sum(s[t, list(c)].sum() for t, c in enumerate(choice)))
    return best


@pytest.mark.parametrize(
    ("n_tokens", "n_experts", "top_k", "cap"),
    [(5, 3, 1, 2), (4, 4, 2, 2), (6, 3, 2, 4), (4, 4, 2, 3), (6, 4, 1, 2)],
)
def test_lp_oracle_equals_brute_force(n_tokens: int, n_experts: int, top_k: int, cap: int) -> None:
    rng = np.random.default_rng(n_tokens * 100 + n_experts * 10 + cap)
    for _ in range(3):
        s = rng.random((n_tokens, n_experts))
        result = optimal_assignment(torch.tensor(s), top_k, cap)
        assert result.objective == pytest.approx(brute_force(s, top_k, cap), abs=1e-9)
        chosen = result.selected.numpy()
        assert np.all(np.sort(chosen, axis=1)[:, 1:] != np.sort(chosen, axis=1)[:, :-1])
        assert np.bincount(chosen.ravel(), minlength=n_experts).max() <= cap
        assert np.take_along_axis(s, chosen, axis=1).sum() == pytest.approx(result.objective)


def test_lp_dual_bias_closes_the_duality_gap() -> None:
    """D(b*) = OPT at HiGHS's capacity multipliers; D(b) >= OPT for any b (C = T K / N)."""
    rng = np.random.default_rng(1)
    s = torch.tensor(rng.random((40, 8)))
    cap = 40 * 2 // 8
    result = optimal_assignment(s, 2, cap)
    bias = torch.tensor(result.bias)
    assert dual_function(s, bias, 2, cap) == pytest.approx(result.objective, abs=1e-8)
    for _ in range(20):
        other = torch.tensor(rng.normal(scale=0.3, size=8))
        assert dual_function(s, other, 2, cap) >= result.objective - 1e-9


# -- ALF-LB in the deterministic setting -----------------------------------------------------------
def _dual(s: np.ndarray, b: np.ndarray, top_k: int, cap: float) -> float:
    return float(np.sort(s + b, axis=1)[:, -top_k:].sum() - cap * b.sum())


def _choices(s: np.ndarray, b: np.ndarray, top_k: int) -> list[set[int]]:
    return [set(row) for row in np.argsort(-(s + b), axis=1, kind="stable")[:, :top_k]]


@pytest.mark.parametrize(
    ("n_tokens", "n_experts", "top_k", "u"),
    [(64, 8, 2, 1e-3), (64, 8, 2, 1e-2), (96, 8, 1, 2e-3), (128, 16, 4, 1e-3)],
)
def test_alf_lb_deterministic_claims(
    tmp_path: Path, n_tokens: int, n_experts: int, top_k: int, u: float
) -> None:
    """A constant stream (one batch repeated), fixed scores. With D the dual function of the
    assignment LP (capacity c_bar = T K / N) and c_k the loads under the bias b_k:

    (i) D(b_k) >= OPT (weak duality) and D falls at most u ||c_k - c_bar||_1 per step (convexity);
        whenever sum_i sign(c_k,i - c_bar)(c_k+1,i - c_bar) >= 0 (the step does not overshoot),
        D(b_k+1) <= D(b_k) (D is convex along the step and its slope at the end is <= 0): the
        monotonic-improvement condition; on these instances it holds at every step before the
        loads first reach MaxVio <= 1/8, so D decreases monotonically until then;
    (ii) preference rule: a token that changes experts leaves only experts whose bias fell
        relative to every expert it enters (overloaded -> underloaded, never uphill);
    (iii) MaxVio <= 1/8 is reached within range(b*) / u steps, b* the LP's optimal dual bias,
        for a step small against the score gaps (u <= 2e-3 here). A large constant step can
        cycle above it: at u = 1e-2 the sign update circles MaxVio 0.19-0.31 on seed 0's
        instance, so there (i) and (ii) are checked up to the end of the run instead.
    """
    problem, ctx = stream(
        tmp_path,
        n_experts=n_experts,
        top_k=top_k,
        batch_size=n_tokens,
        repeat_batch=True,
        reference_every=0,
    )
    s = problem.stream.batch("train", 0).numpy()
    c_bar = n_tokens * top_k / n_experts
    optimum = optimal_assignment(torch.tensor(s), top_k, int(c_bar))
    bound = (optimum.bias.max() - optimum.bias.min()) / u

    steps = AlfLb(u=u).run(problem, ctx)
    router = next(steps).solution.router
    biases = [router.bias[0].numpy().copy()]
    for _ in range(int(bound) + 20):
        next(steps)
        biases.append(router.bias[0].numpy().copy())

    duals = [_dual(s, b, top_k, c_bar) for b in biases]
    choices = [_choices(s, b, top_k) for b in biases]
    loads = [np.bincount([e for c in cs for e in c], minlength=n_experts) for cs in choices]
    maxvio = [(c.max() - c_bar) / c_bar for c in loads]
    balanced = next((k for k, m in enumerate(maxvio) if m <= 1 / 8), None)
    if u <= 2e-3:
        assert balanced is not None and balanced <= bound  # (iii)
    assert maxvio[0] > 0.5  # the instance starts far from balance

    for k in range(len(biases) - 1):
        error = loads[k] - c_bar
        assert duals[k] >= optimum.objective - 1e-9
        assert duals[k + 1] >= duals[k] - u * np.abs(error).sum() - 1e-9
        if np.sum(np.sign(error) * (loads[k + 1] - c_bar)) >= 0:
            assert duals[k + 1] <= duals[k] + 1e-9
        if balanced is not None and k < balanced:
            assert duals[k + 1] <= duals[k] + 1e-9, f"D increased at step {k} before balance"
        step = biases[k + 1] - biases[k]  # (ii)
        assert np.allclose(np.abs(step), u * (error != 0))
        for before, after in zip(choices[k], choices[k + 1], strict=True):
            for left in before - after:
                for entered in after - before:
                    assert step[entered] > step[left]
                    assert loads[k][left] > loads[k][entered]


def test_alf_lb_update_uses_the_routed_batch_loads_and_step_schedules() -> None:
    loads = torch.tensor([[10.0, 2.0, 6.0, 6.0]])  # mean 6
    for schedule, factors in (("constant", [1, 1, 1]), ("inv_sqrt", [1, 2**-0.5, 3**-0.5])):
        router = BiasedRouter(2, torch.zeros(1, 4, dtype=torch.float64), 0.1, "sign", schedule)
        expected = torch.zeros(4, dtype=torch.float64)
        for f in factors:
            router.update(loads)
            expected += 0.1 * f * torch.tensor([-1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
            assert torch.allclose(router.bias[0], expected)
    router = BiasedRouter(2, torch.zeros(1, 4, dtype=torch.float64), 0.5, "magnitude", "inv")
    router.update(loads)
    router.update(loads)
    step = torch.tensor([-4.0, 4.0, 0.0, 0.0], dtype=torch.float64) / 6
    assert torch.allclose(router.bias[0], 0.5 * step + 0.25 * step)


# -- the bias selects, never weights ---------------------------------------------------------------
def test_bias_changes_selection_never_the_scored_quality(tmp_path: Path) -> None:
    problem, _ = stream(tmp_path, n_experts=8, top_k=2, batch_size=32, reference_every=0)
    s = problem.next_batch()
    bias = torch.linspace(-0.3, 0.3, 8, dtype=torch.float64)[None]
    router = BiasedRouter(2, bias, 0.001)
    routed = problem.forward(s, router)
    chosen = torch.topk(s + bias, 2, dim=1).indices
    assert torch.equal(routed.selected[0], chosen)
    assert not torch.equal(chosen.sort(1).values, torch.topk(s, 2, dim=1).indices.sort(1).values)
    raw = s.gather(1, chosen).sum() / torch.topk(s, 2, dim=1).values.sum()
    online = problem.evaluate(RoutingSolution(router))["online_quality"]  # the one batch routed
    assert online == pytest.approx(float(raw), rel=1e-12)
    assert torch.equal(routed.loads(8)[0], torch.bincount(chosen.reshape(-1), minlength=8).double())


# -- auxiliary loss --------------------------------------------------------------------------------
def test_aux_loss_equals_the_formula_on_a_hand_computed_batch() -> None:
    rows = [[0.5, 0.1, 0.3, 0.1], [0.4, 0.1, 0.2, 0.3], [0.3, 0.1, 0.1, 0.5], [0.4, 0.3, 0.1, 0.2]]
    scores = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    selected = torch.topk(scores.detach(), 2, dim=1).indices
    # top-2 per token: {0,2}, {0,3}, {3,0}, {0,1} -> counts (4, 1, 1, 2); f = 4/(2*4) * counts
    # f = (2, 0.5, 0.5, 1); P = column means = (0.4, 0.15, 0.175, 0.275)
    # sum f P = 0.8 + 0.075 + 0.0875 + 0.275 = 1.2375
    assert float(auxiliary_loss(scores, selected, 2).detach()) == pytest.approx(1.2375, abs=1e-12)
    routed = RoutedBatch(scores=[scores, scores], selected=[selected, selected])
    loss = AuxLoss(alpha=0.001).extra_loss(routed, 2)
    assert float(loss.detach()) == pytest.approx(2 * 0.001 * 1.2375, abs=1e-15)

    # sigmoid-like scores (rows not summing to 1): normalised per token, P is unchanged ...
    scale = torch.tensor([[2.0], [1.5], [3.0], [0.5]], dtype=torch.float64)
    raw = (scores.detach() * scale).requires_grad_()
    normalized = auxiliary_loss(raw, selected, 2, normalize=True)
    assert float(normalized.detach()) == pytest.approx(1.2375, abs=1e-12)
    # ... the classic formula (the default) uses the raw ones: P = (0.675, 0.2, 0.3125, 0.5625)
    literal = auxiliary_loss(raw, selected, 2)
    assert float(literal.detach()) == pytest.approx(1.35 + 0.1 + 0.15625 + 0.5625, abs=1e-12)
    literal.backward()  # d/ds_{t,i} = f_i / T
    expected = torch.tensor([2.0, 0.5, 0.5, 1.0], dtype=torch.float64) / 4
    assert torch.allclose(raw.grad, expected.expand(4, 4))
    assert torch.autograd.gradcheck(lambda s: auxiliary_loss(s, selected, 2, True), (raw,))


# -- capacity dropping -----------------------------------------------------------------------------
def test_capacity_router_keeps_the_first_arrivals_up_to_capacity() -> None:
    rng = np.random.default_rng(3)
    scores = torch.tensor(rng.random((50, 6)) + np.linspace(0, 0.8, 6))  # skewed
    router = CapacityRouter(top_k=2, n_experts=6, capacity_factor=1.1)
    cap = math.ceil(1.1 * 50 * 2 / 6)
    kept = router.select(scores)
    greedy = torch.topk(scores, 2, dim=1).indices
    queue = np.zeros(6, dtype=int)  # plain reference: first choices first, then token order
    expected = np.full((50, 2), -1)
    for k in range(2):
        for t in range(50):
            e = int(greedy[t, k])
            if queue[e] < cap:
                queue[e] += 1
                expected[t, k] = e
    assert np.array_equal(kept.numpy(), expected)
    loads = expert_loads(kept, 6)
    assert torch.equal(loads, expert_loads(greedy, 6).clamp(max=cap))


def test_max_violation_formula() -> None:
    loads = torch.tensor([[4.0, 2.0, 0.0, 2.0], [2.0, 2.0, 2.0, 2.0]])
    assert torch.allclose(max_violation(loads), torch.tensor([1.0, 0.0]))


# -- the sampling floor of MaxVio_global -----------------------------------------------------------
def expected_max_normal(n: int) -> float:
    """E[max of n independent standard normals] (numerical integration)."""
    density = lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)  # noqa: E731
    return integrate.quad(density, -12, 12)[0]


@pytest.mark.parametrize(("n_experts", "top_k", "n_tokens"), [(16, 2, 4096), (64, 2, 8192)])
def test_balanced_floor_matches_the_normal_approximation(
    n_experts: int, top_k: int, n_tokens: int
) -> None:
    """Loads of a router balanced in expectation are Binomial(H, K/N), exchangeable, summing to
    H K: MaxVio ~ e_N sqrt(N / (N - 1)) sqrt((N - K) / (H K)) for large H."""
    floor = balanced_floor(n_experts, top_k, n_tokens, seed=0, draws=256)
    n, k = n_experts, top_k
    analytic = expected_max_normal(n) * math.sqrt(n / (n - 1)) * math.sqrt((n - k) / (n_tokens * k))
    assert floor == pytest.approx(analytic, rel=0.06)


def test_balanced_floor_for_top1_equals_a_multinomial_simulation() -> None:
    """K = 1: the loads are Multinomial(H, 1/N) (sampled here independently by numpy)."""
    rng = np.random.default_rng(7)
    loads = rng.multinomial(2048, np.full(32, 1 / 32), size=4000)
    reference = ((loads.max(axis=1) - 64) / 64).mean()
    assert balanced_floor(32, 1, 2048, seed=3, draws=400) == pytest.approx(reference, rel=0.03)


class RandomRouter(GreedyRouter):
    """K distinct experts per token uniformly at random: balanced in expectation on any stream."""

    def __init__(self, top_k: int, n_experts: int) -> None:
        super().__init__(top_k)
        self.n_experts, self.generator = n_experts, torch.Generator().manual_seed(11)

    def select(self, scores: torch.Tensor, layer: int = 0) -> torch.Tensor:
        keys = torch.rand(scores.shape, generator=self.generator, dtype=torch.float64)
        return torch.topk(keys, self.top_k, dim=1).indices


def test_maxvio_global_of_a_balanced_router_sits_at_the_reported_floor(tmp_path: Path) -> None:
    """On the issue's instance (N = 64, K = 2): a balanced-in-expectation router measured on 1,024
    tokens (the old held-out set) shows MaxVio ~0.4; on the default 65,536 tokens the floor is 8x
    lower (1 / sqrt(H)) and the router's maxvio_global is within sampling error of it."""
    values = {}
    for tokens in (1024, 65536):
        problem, _ = stream(
            tmp_path,
            n_experts=64,
            top_k=2,
            reference_every=0,
            heldout_batches=1,
            balance_tokens=tokens,
        )
        metrics = problem.evaluate(RoutingSolution(RandomRouter(2, 64)))
        values[tokens] = (metrics["maxvio_global"], metrics["maxvio_global_floor"])
    assert 0.35 < values[1024][1] < 0.5
    assert values[1024][1] / values[65536][1] == pytest.approx(8.0, rel=0.15)
    measured, floor = values[65536]
    assert abs(measured - floor) < 0.5 * floor  # one draw: sd of MaxVio is ~20% of its mean


# -- the stream ------------------------------------------------------------------------------------
def test_stream_is_reproducible_skewed_and_drifts(tmp_path: Path) -> None:
    a, _ = stream(tmp_path, seed=5, n_experts=16, skew=2.0, reference_every=0)
    b, _ = stream(tmp_path, seed=5, n_experts=16, skew=2.0, reference_every=0)
    first = a.next_batch()
    assert torch.equal(first, b.next_batch())
    assert torch.equal(first, a.stream.batch("train", 0))  # any served batch can be redrawn
    assert not torch.equal(first, a.next_batch())

    loads = sum(expert_loads(torch.topk(a.next_batch(), 2, dim=1).indices, 16) for _ in range(20))
    rank = a.stream.popularity_rank
    assert loads[rank <= 4].mean() > 20 * loads[rank > 12].mean()  # Zipf: the popular draw most

    flat, _ = stream(tmp_path, seed=5, n_experts=16, skew=0.0, reference_every=0)
    skewed_vio = max_violation(loads)
    flat_loads = sum(
        expert_loads(torch.topk(flat.next_batch(), 2, dim=1).indices, 16) for _ in range(20)
    )
    assert skewed_vio > 2 * max_violation(flat_loads)

    drifting, _ = stream(tmp_path, seed=5, n_experts=16, skew=2.0, drift=0.05, reference_every=0)
    early = drifting.stream.batch("train", 0)
    late = drifting.stream.batch("train", 30)
    assert torch.equal(early, first)  # drift changes nothing at time 0
    assert (late.mean(0) - early.mean(0)).abs().max() > 0.05


# -- algorithms on the stream ----------------------------------------------------------------------
def drive(
    problem: RoutingStream, ctx: RunContext, algorithm: object, steps: int, eval_every: int = 100
) -> dict:
    """Run ``steps`` steps, evaluating every ``eval_every`` (the online window) and at the end."""
    run = algorithm.run(problem, ctx)  # type: ignore[attr-defined]
    solution = next(run).solution
    for step in range(1, steps + 1):
        next(run)
        if step % eval_every == 0 and step < steps:
            problem.evaluate(solution)
    return problem.evaluate(solution)


def test_optimal_assignment_is_balanced_and_has_zero_regret(tmp_path: Path) -> None:
    problem, ctx = stream(tmp_path, n_experts=8, top_k=2, batch_size=64, reference_every=1)
    metrics = drive(problem, ctx, OptimalAssignment(), 5)
    assert metrics["maxvio_global"] == 0 and metrics["maxvio_batch"] == 0
    assert metrics["quality_vs_opt"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["regret"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["violation"] == 0 and problem.counters["lp"] == 5  # evaluation uncounted
    greedy, ctx = stream(tmp_path, n_experts=8, top_k=2, batch_size=64, reference_every=1)
    base = drive(greedy, ctx, GreedyTopK(), 5)
    assert base["quality"] == 1.0 and base["quality_vs_opt"] > 1  # greedy ignores capacity
    assert base["regret"] < 0 and base["violation"] > 0
    assert base["price_of_balance"] == pytest.approx(metrics["price_of_balance"], rel=1e-12)


def test_alf_lb_balances_the_stream_where_greedy_and_capacity_do_not(tmp_path: Path) -> None:
    config = {"n_experts": 16, "top_k": 2, "batch_size": 256, "reference_every": 0}
    results = {}
    for name, algorithm in (
        ("greedy", GreedyTopK()),
        ("capacity", CapacityDrop(capacity_factor=1.25)),
        ("alf", AlfLb(u=1e-3)),
    ):
        problem, ctx = stream(tmp_path, **config)
        results[name] = drive(problem, ctx, algorithm, 400)
    assert results["greedy"]["maxvio_global"] > 2
    assert results["capacity"]["dropped"] > 0.2
    assert results["alf"]["maxvio_global"] < 0.5
    assert results["alf"]["maxvio_batch"] < 0.5 < results["capacity"]["maxvio_batch"]
    assert results["alf"]["idle_experts"] == 0


def test_aux_loss_refuses_fixed_scores(tmp_path: Path) -> None:
    problem, ctx = stream(tmp_path, reference_every=0)
    with pytest.raises(CompatibilityError, match=r"aux_loss.*fixed scores"):
        next(AuxLoss().run(problem, ctx))


def test_runs_through_the_runner_and_is_reproducible(runs_dir: Path, store: str) -> None:
    def run(seed: int) -> dict:
        cfg = compose(
            [
                f"tracking.uri={store}",
                "experiment_name=routing",
                "problem=routing_stream",
                "problem.reference_every=5",
                "algorithm=alf_lb",
                "budget.max_steps=40",
                "eval_every=20",
                f"seed={seed}",
                "force=true",
                "device.threads=1",
            ]
        )
        tracker = make_tracker(cfg.tracking, cfg.experiment_name)
        tracker.prepare()
        summary = execute(cfg, tracker, name="t", problem_name="p", algorithm_name="a")
        assert summary.status is RunStatus.finished, summary.error
        return summary.metrics

    first, again, other = run(0), run(0), run(1)
    keys = [k for k in first if k != "time_s"]
    assert {k: first[k] for k in keys} == {k: again[k] for k in keys}
    assert first["maxvio_global"] != other["maxvio_global"]
    assert first["oracle/batches"] == 40 and first["oracle/tokens"] == 40 * 256
    assert "regret" in first and "maxvio_batch" in first


@pytest.mark.parametrize(
    "experiment", ["alf_lb_stream", "alf_lb_stream_paper", "alf_lb_lm", "alf_lb_lm_paper"]
)
def test_experiment_presets_build_every_job(experiment: str) -> None:
    """Every algorithm of each preset's sweep composes and builds (keys, types, ranges)."""
    from optbench.contracts.algorithm import Algorithm
    from optbench.contracts.problem import Problem
    from optbench.platform.build import build, check_compatible

    grid = compose([f"experiment={experiment}"], hydra=True)
    algorithms = str(grid.hydra.sweeper.params.algorithm).split(",")
    assert grid.report.metric in ("maxvio_global", "val_ppl")
    for name in algorithms:
        cfg = compose([f"experiment={experiment}", f"algorithm={name}"])
        problem = build(cfg.problem, Problem, "problem")
        algorithm = build(cfg.algorithm, Algorithm, "algorithm")
        check_compatible(problem, algorithm, "p", name)
