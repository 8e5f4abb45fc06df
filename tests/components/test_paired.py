"""The paired statistics: DeLong's AUC difference and the MSE ratio's delta-method interval."""

from __future__ import annotations

import math

from watchnext.components.evaluator.paired import (
    auc,
    auc_with_covariance,
    paired_auc,
    paired_mean,
    paired_mse_ratio,
    z_value,
)

import numpy as np
import pytest

# Two models on 2 positives and 3 negatives, worked by hand below.
LABELS = np.array([1, 1, 0, 0, 0])
MODEL_A = np.array([0.9, 0.6, 0.7, 0.2, 0.1])  # 5 of 6 pairs ordered: AUC 5/6
MODEL_B = np.array([0.8, 0.3, 0.5, 0.4, 0.1])  # 4 of 6 pairs ordered: AUC 2/3


def _correlated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models sharing most of their signal (as a candidate and its baseline do)."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    labels = (signal + rng.normal(size=n) > 0.8).astype(int)
    a = signal + 0.5 * rng.normal(size=n)
    b = signal + 0.6 * rng.normal(size=n)
    return labels, np.round(a, 1), np.round(b, 1)  # rounded: plenty of ties


def test_hand_computed_delong_case():
    # Placement values: V10_A = [1, 2/3], V01_A = [1/2, 1, 1]; V10_B = [1, 1/3], V01_B = [1/2, 1/2, 1].
    # S10 = cov(V10)/2 = [[1/36, 1/18], [1/18, 1/9]], S01 = cov(V01)/3 = [[1/36, 1/72], [1/72, 1/36]].
    aucs, cov = auc_with_covariance(LABELS, MODEL_A, MODEL_B)
    np.testing.assert_allclose(aucs, [5 / 6, 2 / 3])
    np.testing.assert_allclose(cov, [[1 / 18, 5 / 72], [5 / 72, 5 / 36]])
    result = paired_auc(LABELS, MODEL_A, MODEL_B, confidence=0.95)
    assert result.diff == pytest.approx(1 / 6)
    assert result.se == pytest.approx(math.sqrt(1 / 18))  # 1/18 + 5/36 - 2·5/72
    assert result.upper == pytest.approx(1 / 6 + 1.6448536 * math.sqrt(1 / 18), rel=1e-6)
    assert result.n == 5


def test_identical_predictions_differ_by_exactly_zero():
    labels, a, _ = _correlated(500, 0)
    result = paired_auc(labels, a, a.copy())
    assert result.diff == 0 and result.se == 0 and result.lower == result.upper == 0
    ratio = paired_mse_ratio(labels, a, a.copy())
    assert ratio.diff == 1 and ratio.se == 0 and ratio.lower == ratio.upper == 1


def test_placements_match_the_brute_force_pairwise_definition():
    labels, a, b = _correlated(300, 1)
    pos, neg = labels == 1, labels == 0

    def placements(s):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (a10, a01), (b10, b01) = placements(a), placements(b)
    expected = np.cov(np.stack([a10, b10])) / pos.sum() + np.cov(np.stack([a01, b01])) / neg.sum()
    aucs, cov = auc_with_covariance(labels, a, b)
    np.testing.assert_allclose(aucs, [a10.mean(), b10.mean()])
    np.testing.assert_allclose(cov, expected)


def test_delong_standard_error_agrees_with_a_paired_bootstrap():
    labels, a, b = _correlated(3000, 2)
    result = paired_auc(labels, a, b)
    rng = np.random.default_rng(3)
    diffs = []
    for _ in range(400):
        i = rng.integers(0, len(labels), len(labels))
        diffs.append(auc(labels[i], a[i]) - auc(labels[i], b[i]))
    assert result.se == pytest.approx(np.std(diffs, ddof=1), rel=0.15)
    assert result.diff == pytest.approx(np.mean(diffs), abs=result.se / 2)


def test_swapping_the_models_negates_the_difference_and_keeps_the_error():
    labels, a, b = _correlated(800, 4)
    ab, ba = paired_auc(labels, a, b), paired_auc(labels, b, a)
    assert ab.diff == pytest.approx(-ba.diff) and ab.se == pytest.approx(ba.se)
    assert ab.upper == pytest.approx(-ba.lower)
    r_ab, r_ba = paired_mse_ratio(labels, a, b), paired_mse_ratio(labels, b, a)
    assert r_ab.diff == pytest.approx(1 / r_ba.diff) and r_ab.se == pytest.approx(r_ba.se)
    assert r_ab.upper == pytest.approx(1 / r_ba.lower)


def test_weights_act_as_row_counts_and_zero_weight_drops_a_row():
    labels, a, b = _correlated(400, 5)
    counts = np.random.default_rng(6).integers(0, 4, len(labels))
    repeated = np.repeat(np.arange(len(labels)), counts)
    assert auc(labels, a, counts) == pytest.approx(auc(labels[repeated], a[repeated]))
    mask = counts > 0
    presence = mask.astype(float)
    aucs_w, cov_w = auc_with_covariance(labels, a, b, weights=presence)
    aucs_m, cov_m = auc_with_covariance(labels[mask], a[mask], b[mask])
    np.testing.assert_allclose(aucs_w, aucs_m)
    np.testing.assert_allclose(cov_w, cov_m)
    ratio_w = paired_mse_ratio(labels, a, b, weights=presence)
    ratio_m = paired_mse_ratio(labels[mask], a[mask], b[mask])
    assert ratio_w.diff == pytest.approx(ratio_m.diff) and ratio_w.se == pytest.approx(ratio_m.se)
    assert ratio_w.n == mask.sum()


def test_mse_ratio_hand_case_and_bootstrap():
    # Errors² of A: [1, 0, 1, 0] (MSE 1/2); of B: [1, 1, 1, 1] (MSE 1): ratio 1/2.
    y = np.array([0.0, 0.0, 0.0, 0.0])
    result = paired_mse_ratio(y, np.array([1.0, 0.0, -1.0, 0.0]), np.array([1.0, 1.0, -1.0, 1.0]))
    assert (result.candidate, result.baseline, result.diff) == (0.5, 1.0, 0.5)
    # Influence z_i = (e_a/0.5 - e_b/1)/4 = [1/4, -1/4, 1/4, -1/4]: Σz² = 1/4, × 4/3.
    assert result.se == pytest.approx(math.sqrt(1 / 3))

    rng = np.random.default_rng(7)
    y = rng.gamma(2.0, 2.0, 2000)
    a = y + rng.normal(0, 1.0, 2000)
    b = y + 0.3 * (a - y) + rng.normal(0, 1.0, 2000)
    result = paired_mse_ratio(y, a, b)
    logs = []
    for _ in range(400):
        i = rng.integers(0, len(y), len(y))
        logs.append(math.log(np.mean((y[i] - a[i]) ** 2) / np.mean((y[i] - b[i]) ** 2)))
    assert result.se == pytest.approx(np.std(logs, ddof=1), rel=0.15)


def test_undefined_cases_are_nan_not_an_error():
    result = paired_auc(np.ones(4), np.arange(4.0), np.arange(4.0))  # no negatives
    assert math.isnan(result.diff) and math.isnan(result.candidate)
    assert math.isnan(auc(np.array([1, 0]), np.array([np.nan, 0.2])))
    assert paired_mse_ratio(np.zeros(3), np.ones(3), np.ones(3), weights=np.zeros(3)).n == 0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="do not match"):
        auc(np.array([1, 0]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="non-negative"):
        auc(np.array([1, 0]), np.array([0.1, 0.2]), weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="confidence"):
        z_value(1.0)


def test_paired_mean_of_per_request_values():
    result = paired_mean(np.array([0.5, 0.7, 0.9]), np.array([0.4, 0.7, 0.7]), "ndcg@5")
    assert result.diff == pytest.approx(0.1)
    assert result.se == pytest.approx(np.std([0.1, 0.0, 0.2], ddof=1) / math.sqrt(3))
