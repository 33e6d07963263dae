"""The report's statistics against hand computations and SciPy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fusion_psro.experiments.statistics import (
    aggregates,
    clustered_interval,
    equivalence,
    holm,
    holm_verdicts,
    iqm,
    paired_difference,
    performance_profile,
    probability_of_improvement,
)


def test_aggregates_are_rliables_iqm_and_mean_with_intervals_around_them():
    from rliable import metrics

    rng = np.random.default_rng(1)
    scores = {"a": rng.normal(0.3, 0.05, 12), "b": np.array([0.1, 0.2, 0.9, 0.15, 0.12, 0.11, 0.4, 0.13])}
    state = np.random.get_state()[1].copy()
    result = aggregates(scores, reps=300, seed=3)
    assert np.array_equal(np.random.get_state()[1], state)  # the global generator is left as it was
    for arm, values in scores.items():
        agg = result[arm]
        assert agg.n == len(values)
        assert agg.iqm == pytest.approx(stats.trim_mean(values, 0.25))
        assert agg.mean == pytest.approx(np.mean(values))
        assert agg.iqm_low <= agg.iqm <= agg.iqm_high and agg.mean_low <= agg.mean <= agg.mean_high
    for n in range(1, 12):  # every remainder of n / 4
        values = rng.normal(0, 1, n)
        assert iqm(values) == pytest.approx(stats.trim_mean(values, 0.25))
        assert iqm(values) == pytest.approx(metrics.aggregate_iqm(values[:, None]))
    # The IQM of b leaves out the outlier 0.9: 8 values, the middle 4 are 0.12, 0.13, 0.15, 0.2.
    assert result["b"].iqm == pytest.approx((0.12 + 0.13 + 0.15 + 0.2) / 4)
    assert aggregates(scores, reps=300, seed=3) == result  # seeded


def test_probability_of_improvement_counts_pairs_where_x_is_less_exploitable():
    x, y = [0.1, 0.2, 0.3], [0.2, 0.4]
    # Pairs (x, y): x < y in (0.1,0.2),(0.1,0.4),(0.2,0.4),(0.3,0.4); tie (0.2,0.2) counts one half; 6 pairs.
    point, low, high = probability_of_improvement(x, y, reps=200)
    assert point == pytest.approx(4.5 / 6)
    assert 0.0 <= low <= point <= high <= 1.0


def test_the_probability_of_improvement_interval_is_rliables_independent_bootstrap():
    from rliable import library, metrics

    rng = np.random.default_rng(4)
    x, y = rng.normal(0.3, 0.05, 15), rng.normal(0.32, 0.05, 12)
    point, low, high = probability_of_improvement(x, y, reps=3000, seed=0)
    np.random.seed(0)
    _, reference = library.get_interval_estimates({"p": (-x[:, None], -y[:, None])}, metrics.probability_of_improvement,
                                                  reps=3000)
    assert (low, high) == pytest.approx(tuple(np.ravel(reference["p"])), abs=0.03)


def test_performance_profile_is_the_fraction_of_runs_below_each_threshold():
    values = [0.1, 0.2, 0.3, 0.4]
    profile = performance_profile({"a": values}, [0.05, 0.25, 0.5], reps=100)["a"]
    assert profile[0].tolist() == [0.0, 0.5, 1.0]
    assert np.all(profile[1] <= profile[0] + 1e-12) and np.all(profile[0] <= profile[2] + 1e-12)


def test_paired_difference_matches_scipys_paired_t_test():
    rng = np.random.default_rng(0)
    a = rng.normal(0.3, 0.05, 20)
    b = a - 0.02 + rng.normal(0, 0.01, 20)
    d = paired_difference(a - b, reps=2000, seed=1)
    reference = stats.ttest_rel(a, b)
    interval = reference.confidence_interval(0.95)
    assert d.n == 20 and d.mean == pytest.approx(np.mean(a - b))
    assert (d.t_low, d.t_high, d.p) == pytest.approx((interval.low, interval.high, reference.pvalue))
    # The bootstrap interval of a mean of 20 normal differences is close to the t interval.
    assert d.boot_low == pytest.approx(d.t_low, abs=0.003) and d.boot_high == pytest.approx(d.t_high, abs=0.003)
    single = paired_difference([0.5])
    assert single.mean == 0.5 and math.isnan(single.t_low) and math.isnan(single.p)


def test_tost_p_values_by_hand_and_the_verdicts():
    d = np.array([0.01, -0.02, 0.015, 0.0, 0.005, -0.01])
    margin = 0.05
    se = d.std(ddof=1) / math.sqrt(d.size)
    result = equivalence(d, margin)
    assert result.p_lower == pytest.approx(stats.t.sf((d.mean() + margin) / se, d.size - 1))
    assert result.p_upper == pytest.approx(stats.t.cdf((d.mean() - margin) / se, d.size - 1))
    assert result.p == max(result.p_lower, result.p_upper) < 0.05
    assert result.verdict == "equivalent within ±0.05"
    assert equivalence(d + 0.2, margin).verdict == "better by at least 0.05"
    assert equivalence(d - 0.2, margin).verdict == "worse by at least 0.05"
    assert equivalence([0.3, -0.2, 0.1], margin).verdict == "not determined at this n"
    assert equivalence(d + 0.05, margin).verdict == "not determined at this n"  # around the margin itself
    with pytest.raises(ValueError, match="margin must be positive"):
        equivalence(d, 0.0)


def test_holm_verdicts_adjust_the_p_value_of_each_verdicts_claim():
    d = np.array([0.01, -0.02, 0.015, 0.0, 0.005, -0.01])
    equivalent, better, worse = equivalence(d, 0.05), equivalence(d + 0.2, 0.05), equivalence(d - 0.2, 0.05)
    undetermined = equivalence([0.3, -0.2, 0.1], 0.05)
    assert [t.claim for t in (equivalent, better, worse, undetermined)] == ["equivalent", "better", "worse", None]
    assert equivalent.claim_p == equivalent.p and better.claim_p == better.p_better
    assert worse.claim_p == worse.p_worse
    assert undetermined.claim_p == min(undetermined.p, undetermined.p_better, undetermined.p_worse)
    tests = [equivalent, better, worse, undetermined]
    adjusted = holm([t.claim_p for t in tests])
    expected = [t.verdict if p < 0.05 else "not determined at this n" for t, p in zip(tests, adjusted)]
    assert holm_verdicts(tests) == expected
    # Each claim below 0.05 alone; 8 copies of a claim with p between 0.05/8 and 0.05 all fail after Holm.
    weak = equivalence(d + 0.05 + 0.02, 0.05)
    assert weak.verdict == "better by at least 0.05" and 0.05 / 8 < weak.claim_p < 0.05
    assert holm_verdicts([weak]) == [weak.verdict]
    assert holm_verdicts([weak] * 8) == ["not determined at this n"] * 8
    assert holm_verdicts([equivalence([0.1], 0.05)]) == ["not determined at this n"]  # n = 1: no p-value


def test_holm_by_hand():
    # Sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to 0.06).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([0.02, math.nan, 0.01])  # NaN is not a comparison: m = 2
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert holm([]) == []


def test_a_clustered_interval_is_wider_than_the_naive_one_on_nested_data():
    rng = np.random.default_rng(5)
    run_effects = rng.normal(0.0, 0.1, 5)  # five source runs, each shifting all its units
    clusters = np.repeat(np.arange(5), 30)
    values = run_effects[clusters] + rng.normal(0.0, 0.01, clusters.size)
    naive = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    clustered = clustered_interval(values, clusters.tolist(), reps=1000, seed=0)
    assert (clustered.n, clustered.clusters) == (150, 5)
    assert clustered.mean == pytest.approx(values.mean())
    assert clustered.high - clustered.low > 3 * (naive.high - naive.low)
    # Units that are independent (one unit per cluster) give about the naive width.
    flat = clustered_interval(values, list(range(values.size)), reps=1000, seed=0)
    assert flat.high - flat.low == pytest.approx(naive.high - naive.low, rel=0.25)
    one_run = clustered_interval(values[:30], [0] * 30)
    assert one_run.clusters == 1 and math.isnan(one_run.low)


def test_the_clustered_bootstrap_matches_a_two_stage_loop():
    """The multinomial shortcut against the two stages written out: runs, then units within each drawn run."""
    from fusion_psro.experiments.statistics import clustered_bootstrap

    rng = np.random.default_rng(2)
    sizes = [3, 8, 5, 12]
    clusters = np.repeat(np.arange(4), sizes)
    values = rng.normal(0, 0.2, 4)[clusters] + rng.normal(0, 0.05, clusters.size)
    groups = [values[clusters == c] for c in range(4)]
    loop = []
    for _ in range(4000):
        drawn = [groups[k] for k in rng.integers(0, 4, size=4)]
        units = np.concatenate([g[rng.integers(0, g.size, size=g.size)] for g in drawn])
        loop.append(units.mean())
    fast = clustered_bootstrap(values, clusters.tolist(), reps=4000, seed=1)
    assert fast.mean() == pytest.approx(np.mean(loop), abs=0.01)
    assert fast.std() == pytest.approx(np.std(loop), rel=0.08)
