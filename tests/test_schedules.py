"""Learning-rate schedules: values at chosen steps, and the refined schedule against a
brute-force evaluation of Defazio et al.'s formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import median_filter

from optbench.algorithms import schedules
from optbench.contracts.errors import ConfigError

T = 1000


def test_linear_decay_values() -> None:
    f = schedules.make_schedule("linear_decay", T)
    assert f[0] == 1.0
    assert f[250] == pytest.approx(0.75)
    assert f[500] == pytest.approx(0.5)
    assert f[T - 1] == pytest.approx(1 / T)


def test_cosine_values() -> None:
    f = schedules.make_schedule("cosine", T)
    assert f[0] == 1.0
    assert f[250] == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert f[500] == pytest.approx(0.5)
    assert f[750] == pytest.approx((1 - math.cos(math.pi / 4)) / 2)


def test_step_and_constant_values() -> None:
    f = schedules.make_schedule("step", T, milestones=[0.5, 0.75], gamma=0.1)
    assert f[499] == 1.0 and f[500] == pytest.approx(0.1)
    assert f[749] == pytest.approx(0.1) and f[750] == pytest.approx(0.01)
    assert np.all(schedules.make_schedule("constant", T) == 1.0)


def test_warmup_multiplies_any_schedule() -> None:
    f = schedules.make_schedule("cosine", T, warmup=0.1)
    assert f[0] == pytest.approx(1 / 100)
    assert f[49] == pytest.approx(0.5 * (1 + math.cos(math.pi * 49 / T)) / 2)
    assert f[100] == pytest.approx((1 + math.cos(math.pi * 100 / T)) / 2)


def test_refined_with_constant_gradient_norms_is_linear_decay() -> None:
    G = np.full(T, 3.7)
    authors = schedules.make_schedule("refined", T, grad_norms=G)  # last step 0
    np.testing.assert_allclose(authors, (T - 1 - np.arange(T)) / (T - 1), rtol=1e-12, atol=0)
    positive = schedules.make_schedule("refined", T, grad_norms=G, last_step="positive")
    np.testing.assert_allclose(positive, schedules.make_schedule("linear_decay", T), rtol=1e-12)


def authors_refined(G: np.ndarray, sigma2: float) -> np.ndarray:
    """A direct transcription of the authors' code (facebookresearch/adaptive_scheduling @
    37a8a9b): the smoothing of README.md / visual.py and find_schedule.py's
    ``find_closed_form_schedule`` (inverse-square weights), normalised by its maximum as
    visual.py does."""
    nvals = len(G)
    filter_width = 2 * (int(sigma2 * nvals) // 2) + 1
    pad = 2 * filter_width
    smoothed = median_filter(
        np.pad(G, (0, pad), mode="reflect"), size=filter_width, mode="nearest"
    )[:-pad]
    weights = smoothed**-2.0
    tail_sums = np.flip(np.cumsum(np.flip(weights)))
    sched = np.zeros(nvals)
    for t in range(nvals):
        sched[t] = 0 if t == nvals - 1 else weights[t] * tail_sums[t + 1] / tail_sums[-1]
    return sched / np.max(sched)


def brute_force_refined(G: np.ndarray, window: int) -> np.ndarray:
    """optbench's options padding=nearest, last_step=positive, term by term (w_T = w_{T-1})."""
    G = median_filter(G, size=window, mode="nearest")
    w = [*(G**-2.0), G[-1] ** -2.0]
    eta = np.array([w[t] * sum(w[p] for p in range(t + 1, len(w))) for t in range(len(G))])
    return eta / eta.max()


def noisy_falling_norms(T: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.exp(rng.normal(size=T)) * np.linspace(3, 1, T)  # gradient norms falling over time


@pytest.mark.parametrize(("steps", "window"), [(200, 0.1), (1000, 0.1), (10_000, 0.1), (777, 0.05)])
def test_refined_equals_the_authors_code(steps: int, window: float) -> None:
    G = noisy_falling_norms(steps)
    refined = schedules.make_schedule("refined", steps, grad_norms=G, window=window)
    np.testing.assert_allclose(refined, authors_refined(G, window), rtol=1e-12, atol=1e-15)
    assert refined[-1] == 0.0 and refined.max() == 1.0
    # falling gradient norms (growing weights) push the peak away from t=0: a warm-up emerges
    assert np.argmax(refined) > 0


def test_refined_options_match_brute_force_formula() -> None:
    G = noisy_falling_norms(200)
    refined = schedules.make_schedule(
        "refined", 200, grad_norms=G, window=0.1, padding="nearest", last_step="positive"
    )
    np.testing.assert_allclose(refined, brute_force_refined(G, 20), rtol=1e-12)


def test_reflect_padding_ignores_a_last_outlier() -> None:
    """One noisy last minibatch norm: ``nearest`` repeats it into the final window, the
    authors' reflect padding does not."""
    G = np.ones(200)
    G[-1] = 100.0
    np.testing.assert_array_equal(schedules.smooth(G, 0.1, "reflect"), np.ones(200))
    assert schedules.smooth(G, 0.1, "nearest")[-1] == 100.0


def test_refined_resamples_a_history_of_another_length() -> None:
    short = np.full(50, 2.0)
    np.testing.assert_allclose(
        schedules.make_schedule("refined", T, grad_norms=short, last_step="positive"),
        schedules.linear_decay(T),
    )


def test_bad_schedules() -> None:
    with pytest.raises(ConfigError, match="unknown schedule 'bogus'"):
        schedules.make_schedule("bogus", T)
    with pytest.raises(ConfigError, match="needs the gradient norms"):
        schedules.make_schedule("refined", T)
    with pytest.raises(ConfigError, match="must be positive"):
        schedules.make_schedule("refined", T, grad_norms=np.zeros(T))


def test_uba_values_from_its_formula() -> None:
    # eta_t / eta_max = 2 c / (2 phi + (2 - phi) c), c = 1 + cos(pi t / T), evaluated by hand
    f = schedules.make_schedule("uba", T, phi=0.5)
    assert f[0] == 1.0
    assert f[500] == pytest.approx(2 * 1 / (2 * 0.5 + 1.5 * 1))  # c = 1: 0.8
    c = 1 + math.cos(math.pi * 250 / T)
    assert f[250] == pytest.approx(2 * c / (1.0 + 1.5 * c))
    c = 1 + math.cos(math.pi * 900 / T)
    f5 = schedules.make_schedule("uba", T, phi=5.0)
    assert f5[900] == pytest.approx(2 * c / (10.0 - 3.0 * c))
    assert f5[500] == pytest.approx(2 / 7)  # 2 / (2 + phi) at T/2


def test_uba_special_cases() -> None:
    np.testing.assert_allclose(
        schedules.make_schedule("uba", T, phi=2.0), schedules.make_schedule("cosine", T)
    )
    nearly_constant = schedules.make_schedule("uba", T, phi=1e-9)
    assert nearly_constant[: T - 5].min() > 0.99
    # a larger phi decays faster at every step
    assert np.all(schedules.uba(T, 4.0)[1:] < schedules.uba(T, 1.0)[1:])
    with pytest.raises(ConfigError, match="uba_phi: must be > 0"):
        schedules.make_schedule("uba", T, phi=0.0)
