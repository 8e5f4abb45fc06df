"""Per-arm metrics of a live experiment and confidence intervals of their differences.

Every metric is a ratio of sums, R = ΣX / ΣY (clicks per request, dismissals per
impression, rating sum per survey). Traffic is split by user, so users are the
independent units: X_u and Y_u are summed per user first, and the variance of R comes
from the per-user spread by the delta method,

    Var(R) ≈ Var_u(X_u − R·Y_u) / (n · Ȳ²),

with n the arm's users, Var_u the sample variance (ddof=1) and Ȳ the mean of Y_u. Counting
impressions (or requests of the same user) as independent would understate the variance:
a user's requests share the user's tastes. With one request per user and Y ≡ 1 this is the
usual s²/n of a mean.

Two arms are independent samples, so the difference Δ = R_t − R_c has
Var(Δ) = Var(R_t) + Var(R_c), and the relative change Δ/R_c (what the paper's tables
report, in %) has, by the delta method on log R, Var ≈ (R_t/R_c)² (Var(R_t)/R_t² + Var(R_c)/R_c²).
Intervals are normal: estimate ± z·se, z = Φ⁻¹(1 − (1 − confidence)/2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A ratio metric of one arm: its value, standard error and the users behind it."""

    value: float
    se: float
    users: int


@dataclass(frozen=True)
class Difference:
    """Treatment − control of one metric, absolute and relative, with confidence intervals."""

    delta: float
    ci_low: float
    ci_high: float
    relative: float
    relative_ci_low: float
    relative_ci_high: float
    z: float

    @property
    def significant(self) -> bool:
        """Both intervals exclude zero: the difference's and the relative change's. They are two
        delta-method approximations (the relative one also carries the control's uncertainty
        in the denominator) that can disagree right at the boundary; a change is called only
        when they agree, so a report never shows a significant change whose interval holds 0."""
        absolute = self.ci_low > 0 or self.ci_high < 0
        return absolute and (self.relative_ci_low > 0 or self.relative_ci_high < 0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
    """R = Σ numerator / Σ denominator over users, with the delta-method standard error.

    `numerator` and `denominator` hold one sum per user. Needs at least two users and a
    positive denominator total; otherwise the value or the error is NaN.
    """
    x = np.asarray(numerator, dtype=np.float64)
    y = np.asarray(denominator, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"numerator and denominator must be 1-d arrays of one value per user, "
                         f"got shapes {x.shape} and {y.shape}")
    n = len(x)
    if n == 0 or y.sum() <= 0:
        return Estimate(math.nan, math.nan, n)
    r = x.sum() / y.sum()
    if n < 2:
        return Estimate(float(r), math.nan, n)
    residual = x - r * y
    se = math.sqrt(residual.var(ddof=1) / n) / y.mean()
    return Estimate(float(r), float(se), n)


def z_value(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (0.95 → 1.96)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r}: must be in (0, 1)")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def difference(treatment: Estimate, control: Estimate, confidence: float) -> Difference:
    """Δ = treatment − control and Δ/control, each with its normal interval."""
    z = z_value(confidence)
    delta = treatment.value - control.value
    se = math.hypot(treatment.se, control.se)
    ratio = treatment.value / control.value if control.value else math.nan
    if control.value and treatment.value:
        rel_se = abs(ratio) * math.hypot(treatment.se / treatment.value, control.se / control.value)
    else:
        rel_se = math.nan
    return Difference(delta=delta, ci_low=delta - z * se, ci_high=delta + z * se,
                      relative=ratio - 1.0, relative_ci_low=ratio - 1.0 - z * rel_se,
                      relative_ci_high=ratio - 1.0 + z * rel_se, z=z)
