"""Paired comparison of two models scored on the same rows: AUC difference and MSE ratio.

Why paired: a candidate and the served model are evaluated on the same eval rows, so
most of the sampling noise of their metrics is shared. The variance of the *difference*
is far smaller than the sum of the two variances, and an honest threshold ("refuse only
when the candidate is worse beyond a tolerance with a given confidence") needs that
variance. An absolute AUC drop of 0.01 compared with a point estimate is below the
sampling error of a few thousand eval rows and refuses seed reruns of the same model.

AUC (DeLong, DeLong & Clarke-Pearson, Biometrics 1988). With positives i (weights u_i,
U = Σu) and negatives j (weights v_j, V = Σv), and ψ(x, y) = 1 if x > y, ½ if x = y,
else 0, each model's placement values are

    V10_i = Σ_j v_j ψ(s_i, s_j) / V        (a positive's share of negatives ranked below it)
    V01_j = Σ_i u_i ψ(s_i, s_j) / U        (a negative's share of positives ranked above it)

and AUC = Σ u_i V10_i / U = Σ v_j V01_j / V. Both are computed in O(n log n): sort one
class's scores, take cumulative weights, and look each score of the other class up with
two binary searches (strictly below, and tied). This is the fast midrank algorithm of
Sun & Xu (IEEE SPL 2014) written with cumulative weights, which also admits weights; for
unit weights it gives exactly DeLong's placement values. The covariance of two models'
AUCs is the covariance of their placement values, over positives and over negatives:

    Cov(A_r, A_s) = S10[r, s] + S01[r, s],
    S10[r, s] = m/(m-1) · Σ_i u_i² (V10_ri - A_r)(V10_si - A_s) / U²   (m positives with u > 0)

(for unit weights S10 = sample covariance / m: DeLong's estimator), and likewise S01 over
negatives. Var(A_a - A_b) = S[a,a] + S[b,b] - 2 S[a,b].

MSE ratio (delta method). With e_a, e_b the squared errors of the two models and
weights w (W = Σw), R = mean_w(e_a) / mean_w(e_b). log R is a smooth function of two
weighted means; its linearization (influence) per row is
z_i = w_i (e_ai / mean(e_a) - e_bi / mean(e_b)) / W, which sums to zero, so
Var(log R) ≈ n/(n-1) · Σ z_i². The interval is taken on the log scale (a ratio is
positive and skewed) and exponentiated. Per-row cost O(n), no resampling: cheap enough
at millions of rows. It is asymptotic; the tests compare it with a paired bootstrap.

Weights are presence masks in watchnext (the rating head counts only rated rows), but any
non-negative weights are accepted: they act like frequency weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np


def z_value(confidence: float) -> float:
    """The standard normal quantile at `confidence` (one-sided): 1.645 at 0.95."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    return NormalDist().inv_cdf(confidence)


def _check(labels: np.ndarray, predictions: list[np.ndarray], weights: np.ndarray | None) -> np.ndarray:
    n = len(labels)
    for p in predictions:
        if p.shape != (n,):
            raise ValueError(f"predictions of shape {p.shape} do not match {n} labels")
    if weights is None:
        return np.ones(n)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"weights of shape {weights.shape} do not match {n} labels")
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise ValueError("weights must be finite and non-negative")
    return weights


def _placements(pos: np.ndarray, neg: np.ndarray, u: np.ndarray,
                v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V10 per positive, V01 per negative) of one model; see the module docstring."""
    order = np.argsort(neg, kind="stable")
    sorted_neg = neg[order]
    cum_v = np.concatenate([[0.0], np.cumsum(v[order])])
    below = cum_v[np.searchsorted(sorted_neg, pos, side="left")]
    upto = cum_v[np.searchsorted(sorted_neg, pos, side="right")]
    v10 = (below + 0.5 * (upto - below)) / cum_v[-1]

    order = np.argsort(pos, kind="stable")
    sorted_pos = pos[order]
    cum_u = np.concatenate([[0.0], np.cumsum(u[order])])
    total = cum_u[-1]
    at_most = cum_u[np.searchsorted(sorted_pos, neg, side="right")]
    less = cum_u[np.searchsorted(sorted_pos, neg, side="left")]
    above = total - at_most
    v01 = (above + 0.5 * (at_most - less)) / total
    return v10, v01


def _weighted_cov(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """m/(m-1) · Σ w_i² (x_ri - x̄_r)(x_si - x̄_s) / W² for rows x[r] (weighted means x̄)."""
    m = len(w)
    if m < 2:
        return np.full((len(x), len(x)), np.nan)
    total = w.sum()
    centred = x - (x @ w / total)[:, None]
    scaled = centred * w
    return (scaled @ scaled.T) / total**2 * m / (m - 1)


def auc_with_covariance(labels: np.ndarray, *predictions: np.ndarray,
                        weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(AUC per model, DeLong covariance matrix of those AUCs) for binary `labels`.

    Rows with weight 0 are left out. Without both a positive and a negative row the AUC is
    undefined: NaN. With a single positive or negative row the covariance is NaN.
    """
    predictions_ = [np.asarray(p, dtype=np.float64) for p in predictions]
    labels = np.asarray(labels)
    w = _check(labels, predictions_, weights)
    keep = w > 0
    is_pos = (labels > 0) & keep
    is_neg = (labels <= 0) & keep
    k = len(predictions_)
    if not is_pos.any() or not is_neg.any():
        return np.full(k, np.nan), np.full((k, k), np.nan)
    u, v = w[is_pos], w[is_neg]
    v10 = np.empty((k, int(is_pos.sum())))
    v01 = np.empty((k, int(is_neg.sum())))
    for r, p in enumerate(predictions_):
        if not np.isfinite(p[keep]).all():
            return np.full(k, np.nan), np.full((k, k), np.nan)
        v10[r], v01[r] = _placements(p[is_pos], p[is_neg], u, v)
    aucs = v10 @ u / u.sum()
    return aucs, _weighted_cov(v10, u) + _weighted_cov(v01, v)


def auc(labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted ROC AUC (ties count ½); NaN without both classes."""
    aucs, _ = auc_with_covariance(labels, predictions, weights=weights)
    return float(aucs[0])


@dataclass(frozen=True)
class PairedResult:
    """A candidate's metric vs the baseline's on the same rows.

    `diff` is candidate - baseline (AUC) or candidate / baseline (MSE ratio); `lower` and
    `upper` are each a one-sided bound at `confidence` (together a two-sided interval at
    2·confidence - 1). `se` is the standard error of the difference (AUC) or of log(ratio).
    """

    metric: str
    candidate: float
    baseline: float
    diff: float
    se: float
    lower: float
    upper: float
    confidence: float
    n: int

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def paired_auc(labels: np.ndarray, candidate: np.ndarray, baseline: np.ndarray,
               weights: np.ndarray | None = None, confidence: float = 0.95) -> PairedResult:
    """DeLong's test of AUC(candidate) - AUC(baseline) on the same rows."""
    z = z_value(confidence)
    aucs, cov = auc_with_covariance(labels, candidate, baseline, weights=weights)
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = math.sqrt(max(var, 0.0)) if math.isfinite(var) else math.nan
    n = int(np.count_nonzero(_check(np.asarray(labels), [], weights) > 0))
    return PairedResult("auc", float(aucs[0]), float(aucs[1]), diff, se, diff - z * se, diff + z * se,
                        confidence, n)


def paired_mse_ratio(labels: np.ndarray, candidate: np.ndarray, baseline: np.ndarray,
                     weights: np.ndarray | None = None, confidence: float = 0.95) -> PairedResult:
    """MSE(candidate) / MSE(baseline) on the same rows, with a delta-method interval."""
    z = z_value(confidence)
    y = np.asarray(labels, dtype=np.float64)
    a_pred, b_pred = np.asarray(candidate, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    w = _check(y, [a_pred, b_pred], weights)
    keep = w > 0
    n = int(keep.sum())
    if n == 0:
        return PairedResult("mse_ratio", math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
                            confidence, 0)
    w, y, a_pred, b_pred = w[keep], y[keep], a_pred[keep], b_pred[keep]
    total = w.sum()
    ea, eb = (y - a_pred) ** 2, (y - b_pred) ** 2
    mse_a, mse_b = float(ea @ w / total), float(eb @ w / total)
    if not (math.isfinite(mse_a) and math.isfinite(mse_b)) or mse_b == 0:
        ratio = mse_a / mse_b if mse_b else (1.0 if mse_a == 0 else math.inf)
        return PairedResult("mse_ratio", mse_a, mse_b, ratio, math.nan, ratio, ratio, confidence, n)
    ratio = mse_a / mse_b
    if mse_a == 0 or n < 2:
        return PairedResult("mse_ratio", mse_a, mse_b, ratio, math.nan, ratio, ratio, confidence, n)
    influence = w * (ea / mse_a - eb / mse_b) / total
    se = math.sqrt(float(influence @ influence) * n / (n - 1))
    return PairedResult("mse_ratio", mse_a, mse_b, ratio, se, ratio * math.exp(-z * se),
                        ratio * math.exp(z * se), confidence, n)


def paired_mean(candidate: np.ndarray, baseline: np.ndarray, metric: str,
                confidence: float = 0.95) -> PairedResult:
    """Mean of per-unit values (e.g. NDCG per request) of two models, and their paired difference.

    The units are independent (one value per request), so the difference's standard
    error is the sample standard deviation of the per-unit differences over √n.
    """
    z = z_value(confidence)
    a, b = np.asarray(candidate, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    n = len(a)
    if n == 0:
        return PairedResult(metric, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, confidence, 0)
    d = a - b
    diff = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return PairedResult(metric, float(a.mean()), float(b.mean()), diff, se, diff - z * se, diff + z * se,
                        confidence, n)
