"""benchmarks/position_bias.py: its NDCG and bias-fit arithmetic on known inputs, and a smoke run
over both logging policies (figures meaningless at that size; the shape of the report is checked)."""

from __future__ import annotations

import json
import math

from bench import position_bias as pb
from bench.cli import run_benchmark

import numpy as np
import pytest


def test_ndcg_is_one_for_the_ideal_order_and_averages_requests():
    gains = np.array([0.9, 0.1, 0.5, 0.2, 0.8])
    requests = np.array(["a", "a", "a", "b", "b"])
    assert pb.ndcg_at(gains, gains, requests, 10) == pytest.approx(1.0)
    # Request a reversed: DCG (0.1 + 0.5/log2 3 + 0.9/2) over the ideal (0.9 + 0.5/log2 3 + 0.1/2);
    # request b ideal: 1.
    reversed_a = np.array([0.0, 2.0, 1.0, 1.0, 2.0])
    expected_a = (0.1 + 0.5 / math.log2(3) + 0.9 / 2) / (0.9 + 0.5 / math.log2(3) + 0.1 / 2)
    assert pb.ndcg_at(reversed_a, gains, requests, 10) == pytest.approx((expected_a + 1.0) / 2)
    # Only the top k count, and a request with no gain at all is left out.
    assert pb.ndcg_at(np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array(["a", "a"]), 1) == 0.0
    assert math.isnan(pb.ndcg_at(np.zeros(2), np.zeros(2), np.array(["a", "a"]), 10))  # nothing to rank


def test_bias_fit_recovers_the_examination_slope_per_device():
    cells = [(p, d) for d in ("mobile", "tv") for p in range(6)]
    eta = {"mobile": 1.0, "tv": 1.4}
    true_log_e = np.array([-eta[d] * math.log1p(p) for p, d in cells])
    # A learned bias that is the truth scaled by 0.5 plus a constant per device: same r relative
    # to position 0, half the slope.
    offset = {"mobile": 0.3, "tv": -2.0}
    bias = np.array([0.5 * e + offset[d] for e, (_, d) in zip(true_log_e, cells, strict=True)])
    fit = pb.bias_fit(cells, bias, true_log_e)
    assert fit["pearson_r_relative"] == pytest.approx(1.0)
    assert fit["eta"]["mobile"]["true"] == pytest.approx(1.0)
    assert fit["eta"]["tv"]["fitted"] == pytest.approx(0.7)
    assert fit["pearson_r"] < 1.0  # the per-device constants are not examination


def test_arms_name_the_position_mode_and_the_bias_form():
    assert pb.arm_model("none") == {"position_mode": "none"}
    assert pb.arm_model(pb.LOG_EXAMINATION_ARM) == {"position_mode": "shallow_tower",
                                                     "position_bias_form": "log_examination"}
    assert pb.arm_label(pb.LOG_EXAMINATION_ARM) == "position_mode shallow_tower, log_examination form"
    assert pb.has_tower("shallow_tower") and not pb.has_tower("input_feature")


def test_world_labels_name_the_policy():
    assert pb.world_label(0.0) == "relevance policy"
    assert pb.world_label(1.0) == "popularity policy 1"


def test_smoke_run_reports_each_logging_policy(tmp_path):
    out = tmp_path / "reports"
    run_benchmark("position_bias", "smoke", str(out), str(tmp_path / "work"))
    document = json.loads((out / "position_bias.json").read_text())
    worlds = document["figures"]["worlds"]
    assert [w["policy_popularity"] for w in worlds] == list(pb.SIZES["smoke"].policy_popularity)
    assert len(worlds) == 2
    for world in worlds:
        assert set(world["summary"]) == set(pb.SIZES["smoke"].modes)
        assert {r["position_mode"] for r in world["runs"]} == set(pb.SIZES["smoke"].modes)
        assert "pearson_r" in world["summary"]["shallow_tower"]
        # steps 0 (the smoke size): trained to convergence on one half of the eval requests and
        # scored on the other, so fewer impressions are scored than the eval split holds.
        assert all(0 < r["best_step"] <= r["steps"] for r in world["runs"])
        assert sum(world["cell_counts"].values()) == world["eval_impressions"] < world["eval_split"]
        # The log-examination tower's learned bias is a log probability: ≤ 0 in every cell.
        learned = world["learned_bias"][pb.LOG_EXAMINATION_ARM][0]["bias"]
        assert len(learned) == len(world["cells"]) and max(learned) <= 0.0
    # The two policies simulate different worlds: the logged order differs.
    assert worlds[0]["baselines"]["all"]["logged_order"] != worlds[1]["baselines"]["all"]["logged_order"]
    markdown = (out / "position_bias.md").read_text()
    assert "relevance policy: all requests" in markdown and "popularity policy 1: all requests" in markdown
    assert (out / "position_bias_ndcg.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
