"""Statistics of the reports: aggregates with bootstrap intervals, paired differences,
equivalence tests, Holm's correction, and intervals clustered by source run.

All of it is about *exploitability* (NashConv / 2), where lower is better:

* :func:`aggregates`: the interquartile mean (IQM, the 25% trimmed mean) and the mean of
  each arm's scores, with rliable's stratified bootstrap percentile intervals (one task:
  the runs are resampled with replacement);
* :func:`probability_of_improvement`: rliable's P(X better than Y) (a Mann-Whitney
  statistic) with an independent-samples bootstrap interval. rliable counts higher scores
  as better, so it is given the negated exploitabilities: the result is P(a run of X is
  less exploitable than a run of Y), ties counting one half;
* :func:`performance_profile`: the fraction of runs whose exploitability is at most tau,
  for each tau of a grid, with rliable's bootstrap bands (again on the negated values:
  "score > -tau" is "exploitability < tau");
* :func:`paired_difference`: the mean of differences paired by seed (runs with the same
  seed share their first response and their random streams), with a t interval and a
  bootstrap percentile interval, and the paired t test's two-sided p-value;
* :func:`equivalence`: two one-sided t tests (TOST) of the paired differences against a
  margin, and a verdict: "equivalent within m", "better by at least m", "worse by at least
  m", or "not determined at this n";
* :func:`holm`: Holm's step-down adjustment of the p-values of one table;
* :func:`clustered_interval`: a two-stage bootstrap (resample source runs, then the units
  within each drawn run) for units nested in runs.

rliable (and its bootstrap library, arch) is imported inside the functions that use it:
importing it takes seconds and loads matplotlib.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

#: Bootstrap resamples of every interval (rliable's and ours).
REPS = 2000
#: Coverage of every two-sided interval.
CONFIDENCE = 0.95
#: The verdict of an equivalence test that neither shows equivalence nor a difference beyond the margin.
NOT_DETERMINED = "not determined at this n"


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """rliable draws its resamples from NumPy's global generator: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _column(values: Sequence[float]) -> np.ndarray:
    """Scores as rliable takes them: runs x tasks, here one task."""
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def iqm(scores: np.ndarray) -> float:
    """The interquartile mean: the mean of the sorted scores without the lowest and highest
    ``int(n / 4)`` (rliable's ``aggregate_iqm``, SciPy's ``trim_mean(0.25)``, in a tenth of the time)."""
    ordered = np.sort(np.ravel(scores))
    cut = int(0.25 * ordered.size)
    return float(ordered[cut:ordered.size - cut].mean())


@dataclasses.dataclass(frozen=True)
class Aggregate:
    """IQM and mean of one arm's scores with their bootstrap intervals."""

    n: int
    iqm: float
    iqm_low: float
    iqm_high: float
    mean: float
    mean_low: float
    mean_high: float


def aggregates(scores: Mapping[str, Sequence[float]], *, reps: int = REPS, seed: int = 0,
               confidence: float = CONFIDENCE) -> dict[str, Aggregate]:
    """IQM and mean per arm with rliable's stratified bootstrap percentile intervals (the
    statistic on each resample is :func:`iqm`, equal to rliable's ``aggregate_iqm``)."""
    from rliable import library  # noqa: PLC0415 (slow import)

    def both(x: np.ndarray) -> np.ndarray:
        return np.array([iqm(x), float(x.mean())])

    data = {arm: _column(values) for arm, values in scores.items() if len(values)}
    if not data:
        return {}
    with _seeded_global_numpy(seed):
        points, intervals = library.get_interval_estimates(data, both, reps=reps, confidence_interval_size=confidence)
    return {arm: Aggregate(len(data[arm]), float(points[arm][0]), float(intervals[arm][0, 0]),
                           float(intervals[arm][1, 0]), float(points[arm][1]), float(intervals[arm][0, 1]),
                           float(intervals[arm][1, 1])) for arm in data}


def probability_of_improvement(x: Sequence[float], y: Sequence[float], *, reps: int = REPS, seed: int = 0,
                               confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """P(a run of ``x`` is less exploitable than a run of ``y``) with its bootstrap interval.

    The point is rliable's; the interval resamples ``x`` and ``y`` independently, as
    rliable's ``StratifiedIndependentBootstrap`` does, but vectorized (rliable's takes
    seconds per comparison: a SciPy Mann-Whitney test per resample).
    """
    from rliable import metrics  # noqa: PLC0415 (slow import)

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    point = float(metrics.probability_of_improvement(-_column(x), -_column(y)))
    rng = np.random.default_rng(seed)
    samples = np.empty(reps)
    for start in range(0, reps, 100):
        count = min(100, reps - start)
        bx = x[rng.integers(0, x.size, size=(count, x.size))][:, :, None]
        by = y[rng.integers(0, y.size, size=(count, y.size))][:, None, :]
        samples[start:start + count] = ((bx < by).mean(axis=(1, 2)) + 0.5 * (bx == by).mean(axis=(1, 2)))
    low, high = percentile_interval(samples, confidence)
    return point, low, high


def performance_profile(scores: Mapping[str, Sequence[float]], taus: Sequence[float], *, reps: int = REPS,
                        seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per arm: fraction of runs with exploitability < tau for each tau, and its band (low, high)."""
    from rliable import library  # noqa: PLC0415 (slow import)

    negated = {arm: -_column(values) for arm, values in scores.items() if len(values)}
    with _seeded_global_numpy(seed):
        profiles, bands = library.create_performance_profile(negated, -np.asarray(taus, dtype=np.float64), reps=reps)
    return {arm: (np.asarray(profiles[arm]), np.asarray(bands[arm][0]), np.asarray(bands[arm][1])) for arm in negated}


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The two-sided percentile interval of bootstrap ``samples``."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_p_value(samples: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the statistic is 0": twice the smaller tail beyond 0,
    with one added to both counts (never exactly 0)."""
    reps = samples.size
    below, above = int((samples <= 0).sum()), int((samples >= 0).sum())
    return min(1.0, 2 * (min(below, above) + 1) / (reps + 1))


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """Mean of paired differences with a t interval, a bootstrap interval and the t test's p."""

    n: int
    mean: float
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float
    #: Two-sided p-value of the paired t test (mean difference 0).
    p: float


def paired_difference(differences: Sequence[float], *, reps: int = REPS, seed: int = 0,
                      confidence: float = CONFIDENCE) -> PairedDifference:
    """Mean paired difference; intervals and p are NaN below two pairs (and p for constant data)."""
    from scipy import stats  # noqa: PLC0415

    d = np.asarray(differences, dtype=np.float64)
    nan = math.nan
    if d.size < 2:
        return PairedDifference(int(d.size), float(d.mean()) if d.size else nan, nan, nan, nan, nan, nan)
    test = stats.ttest_1samp(d, 0.0)
    t_interval = test.confidence_interval(confidence)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(reps, d.size))].mean(axis=1)
    boot_low, boot_high = percentile_interval(means, confidence)
    return PairedDifference(int(d.size), float(d.mean()), float(t_interval.low), float(t_interval.high),
                            boot_low, boot_high, float(test.pvalue))


@dataclasses.dataclass(frozen=True)
class Equivalence:
    """Two one-sided t tests of paired differences against a margin, and the verdict."""

    margin: float
    #: p of H0 "mean <= -margin" against "mean > -margin".
    p_lower: float
    #: p of H0 "mean >= +margin" against "mean < +margin".
    p_upper: float
    #: p of H0 "mean <= +margin" against "mean > +margin" (better by at least the margin).
    p_better: float
    #: p of H0 "mean >= -margin" against "mean < -margin" (worse by at least the margin).
    p_worse: float
    #: What the differences show at the test's level: "equivalent", "better", "worse", or None
    #: (not determined).
    claim: str | None

    @property
    def p(self) -> float:
        """The TOST p-value: the larger of the two one-sided p-values."""
        return max(self.p_lower, self.p_upper)

    @property
    def verdict(self) -> str:
        """The claim in words, with the margin: "equivalent within ±m", "better by at least m",
        "worse by at least m" or "not determined at this n"."""
        words = {"equivalent": f"equivalent within ±{self.margin:g}",
                 "better": f"better by at least {self.margin:g}",
                 "worse": f"worse by at least {self.margin:g}"}
        return words.get(self.claim, NOT_DETERMINED)

    @property
    def claim_p(self) -> float:
        """The p-value of the claim (equivalent, better or worse by the margin); for "not
        determined", the smallest of the three, so Holm can rank the comparison."""
        claims = {"equivalent": self.p, "better": self.p_better, "worse": self.p_worse}
        return claims[self.claim] if self.claim is not None else min(claims.values())


def equivalence(differences: Sequence[float], margin: float, *, alpha: float = 0.05) -> Equivalence:
    """TOST of paired differences (positive: better) against ``margin`` at level ``alpha``.

    "equivalent within m" when both one-sided tests reject (the 1 - 2 alpha t interval lies
    inside (-m, m)); "better by at least m" when "mean <= m" is rejected; "worse by at least
    m" when "mean >= -m" is rejected; otherwise "not determined at this n".
    """
    from scipy import stats  # noqa: PLC0415

    d = np.asarray(differences, dtype=np.float64)
    if margin <= 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    if d.size < 2 or not np.isfinite(d).all():
        nan = math.nan
        return Equivalence(margin, nan, nan, nan, nan, None)
    p_lower = float(stats.ttest_1samp(d, -margin, alternative="greater").pvalue)
    p_upper = float(stats.ttest_1samp(d, margin, alternative="less").pvalue)
    p_better = float(stats.ttest_1samp(d, margin, alternative="greater").pvalue)
    p_worse = float(stats.ttest_1samp(d, -margin, alternative="less").pvalue)
    if max(p_lower, p_upper) < alpha:
        claim = "equivalent"
    elif p_better < alpha:
        claim = "better"
    elif p_worse < alpha:
        claim = "worse"
    else:
        claim = None
    return Equivalence(margin, p_lower, p_upper, p_better, p_worse, claim)


def holm_verdicts(tests: Sequence[Equivalence], *, alpha: float = 0.05) -> list[str]:
    """The verdicts of one table's equivalence tests that survive Holm's correction over them.

    Every verdict reads one claim off the paired differences (:attr:`Equivalence.claim_p`); the
    claims' p-values are Holm-adjusted together (:func:`holm`), and a verdict whose adjusted
    p-value is not below ``alpha`` becomes "not determined at this n".
    """
    adjusted = holm([test.claim_p for test in tests])
    return [test.verdict if p < alpha else NOT_DETERMINED for test, p in zip(tests, adjusted)]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order (NaN entries stay NaN, uncounted).

    Sorted ascending, the i-th smallest (from 0) of m is multiplied by m - i, capped at 1,
    and made non-decreasing along the order.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    running = 0.0
    for rank, index in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return [float(v) for v in adjusted]


def clustered_bootstrap(values: Sequence[float], clusters: Sequence[object], *, reps: int = REPS,
                        seed: int = 0) -> np.ndarray:
    """Bootstrap means of ``values`` nested in ``clusters``: resample the clusters with
    replacement, then the units within each drawn cluster; the mean pools the drawn units.

    Drawing cluster c m times, each time resampling its n units, draws m * n units from it
    with replacement: the counts per cluster are multinomial, and so are the counts per unit.
    """
    values = np.asarray(values, dtype=np.float64)
    index = {cluster: i for i, cluster in enumerate(dict.fromkeys(clusters))}
    labels = np.asarray([index[c] for c in clusters], dtype=np.int64)
    groups = [values[labels == i] for i in range(len(index))]
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(len(groups), np.full(len(groups), 1 / len(groups)), size=reps)  # reps x clusters
    total, count = np.zeros(reps), np.zeros(reps)
    for c, group in enumerate(groups):
        units = drawn[:, c] * group.size
        total += rng.multinomial(units, np.full(group.size, 1 / group.size)) @ group
        count += units
    return total / count


@dataclasses.dataclass(frozen=True)
class ClusteredInterval:
    """Mean of nested units with the two-stage bootstrap interval and p-value."""

    n: int
    clusters: int
    mean: float
    low: float
    high: float
    p: float


def clustered_interval(values: Sequence[float], clusters: Sequence[object], *, reps: int = REPS, seed: int = 0,
                       confidence: float = CONFIDENCE) -> ClusteredInterval:
    """Mean, two-stage bootstrap percentile interval and bootstrap p-value; NaN with fewer
    than two clusters (one run says nothing about the spread between runs)."""
    values = np.asarray(values, dtype=np.float64)
    count = len(set(clusters))
    mean = float(values.mean()) if values.size else math.nan
    if count < 2:
        return ClusteredInterval(int(values.size), count, mean, math.nan, math.nan, math.nan)
    samples = clustered_bootstrap(values, clusters, reps=reps, seed=seed)
    low, high = percentile_interval(samples, confidence)
    return ClusteredInterval(int(values.size), count, mean, low, high, bootstrap_p_value(samples))


__all__ = ["CONFIDENCE", "REPS", "Aggregate", "ClusteredInterval", "Equivalence", "PairedDifference", "aggregates",
           "bootstrap_p_value", "iqm", "clustered_bootstrap", "clustered_interval", "equivalence", "holm",
           "paired_difference", "percentile_interval", "performance_profile", "probability_of_improvement"]
