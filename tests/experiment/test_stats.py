"""Ratio metrics and their intervals: exact on cases worked by hand, calibrated on A/A tests."""

from __future__ import annotations

import math

from watchnext.experiment.stats import Estimate, difference, ratio_estimate, z_value

import numpy as np
import pytest


def test_one_request_per_user_is_the_mean_and_its_standard_error():
    # 100 users, one request each, 30 clicked: p = 0.3, s² = 0.3·0.7·100/99, se = sqrt(s²/100).
    clicks = np.array([1.0] * 30 + [0.0] * 70)
    e = ratio_estimate(clicks, np.ones(100))
    assert e.value == pytest.approx(0.3)
    assert e.se == pytest.approx(math.sqrt(0.21 * 100 / 99 / 100))
    assert e.users == 100


def test_a_ratio_by_hand():
    # Users with (clicks, requests) = (1, 1), (3, 2), (0, 1), (4, 4): R = 8/8 = 1;
    # residuals x − R·y = 0, 1, −1, 0 → sample variance 2/3; Ȳ = 2; se = sqrt(2/3 / 4) / 2.
    e = ratio_estimate(np.array([1.0, 3, 0, 4]), np.array([1.0, 2, 1, 4]))
    assert e.value == pytest.approx(1.0)
    assert e.se == pytest.approx(math.sqrt(2 / 3 / 4) / 2)


def test_the_difference_interval_by_hand():
    t, c = Estimate(0.5, 0.03, 100), Estimate(0.4, 0.04, 100)
    d = difference(t, c, 0.95)
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert d.delta == pytest.approx(0.1)
    assert (d.ci_low, d.ci_high) == pytest.approx((0.1 - 1.959964 * 0.05, 0.1 + 1.959964 * 0.05), abs=1e-6)
    assert d.relative == pytest.approx(0.25)
    rel_se = 1.25 * math.hypot(0.03 / 0.5, 0.04 / 0.4)
    assert d.relative_ci_low == pytest.approx(0.25 - 1.959964 * rel_se, abs=1e-6)
    # The difference's interval excludes 0 (0.002 > 0) but the relative change's does not
    # (0.25 − 1.96 · 0.146 < 0): not called significant.
    assert d.ci_low > 0 and d.relative_ci_low < 0 and not d.significant
    clear = difference(Estimate(0.5, 0.01, 100), Estimate(0.4, 0.01, 100), 0.95)
    assert clear.ci_low > 0 and clear.relative_ci_low > 0 and clear.significant
    assert not difference(Estimate(0.41, 0.04, 9), c, 0.95).significant


def test_intervals_cover_the_truth_about_as_often_as_stated_on_a_a_tests():
    """1,000 A/A experiments with clustered users (Poisson requests, a per-user click rate):
    the 95 % interval of the difference covers 0 in about 95 % of them. Counting requests as
    independent instead would cover far less often; the per-user variance must not."""
    rng = np.random.default_rng(0)
    covered = 0
    naive_covered = 0
    for _ in range(1000):
        arms = []
        for _ in range(2):
            requests = rng.poisson(5.0, size=400) + 1
            rate = rng.beta(1.0, 3.0, size=400)
            clicks = rng.binomial(requests * 10, rate).astype(float)
            arms.append((clicks, requests.astype(float)))
        (xt, yt), (xc, yc) = arms
        d = difference(ratio_estimate(xt, yt), ratio_estimate(xc, yc), 0.95)
        covered += d.ci_low <= 0 <= d.ci_high
        # Per-request "independent" standard error, for contrast.
        naive = [math.sqrt(np.var(np.repeat(x / y, y.astype(int)), ddof=1) / y.sum()) for x, y in arms]
        naive_covered += abs(d.delta) <= 1.96 * math.hypot(*naive)
    assert 0.93 <= covered / 1000 <= 0.97
    assert naive_covered / 1000 < 0.9


def test_degenerate_inputs_give_nan_not_an_error():
    assert math.isnan(ratio_estimate(np.array([]), np.array([])).value)
    assert math.isnan(ratio_estimate(np.array([1.0]), np.array([1.0])).se)
    with pytest.raises(ValueError, match="one value per user"):
        ratio_estimate(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="confidence"):
        z_value(1.0)
