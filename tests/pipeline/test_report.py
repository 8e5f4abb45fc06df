"""report.md from the Evaluator's metrics: the paired comparison, per-head slices, NDCG per request."""

from __future__ import annotations

import dataclasses

from watchnext.components.evaluator.metrics import Scored, evaluate
from watchnext.core.config import DEFAULT_HEADS, Config
from watchnext.pipeline.report import draw_plots, render

import numpy as np

CONFIG = Config().replace(heads=tuple(dataclasses.replace(h, value_threshold=0.0) for h in DEFAULT_HEADS))


def _metrics(baseline: bool, slate: int = 10, config: Config = CONFIG) -> dict:
    rng = np.random.default_rng(0)
    n = 400  # 40 requests of 10 on two devices: positions 0-9, so no 10+ bucket
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-x))
    columns = {"click": (rng.random(n) < p).astype(int), "like": (rng.random(n) < p / 2).astype(int),
               "dismiss": (rng.random(n) < 0.1).astype(int), "watch_time": 20 * p,
               "rating": 1 + 4 * p, "rating_present": (np.arange(n) % 4 == 0).astype(int),
               "device": np.repeat(np.array(["mobile", "tv"] * 20, dtype=object), 10),
               "position": np.arange(n) % 10, "request": np.arange(n) // slate}
    served = {"click": p, "like": p / 2, "dismiss": np.full(n, 0.1), "watch_time": 20 * p,
              "rating": 1 + 4 * p, "score": p}
    return evaluate(config, Scored(columns, served, served if baseline else None))


def test_report_shows_the_comparison_slices_and_ranking():
    text = render(CONFIG, _metrics(baseline=True), "blessed")
    assert "## Candidate vs the served model (same rows, paired, 95% one-sided bounds)" in text
    assert "| click | AUC (DeLong) |" in text and "| rating | MSE ratio" in text
    click = text.split("## click (binary)")[1].split("##")[0]
    rows = [line.split(" | ")[0].lstrip("| ") for line in click.strip().splitlines()[2:]]
    assert rows == ["overall", "device=mobile", "device=tv", "position=0", "position=1", "position=2-4",
                    "position=5-9"]  # no empty 10+ slice
    assert "| overall | 100 |" not in click and "(only where `rating_present` = 1)" in text
    rating = text.split("## rating (regression)")[1].split("##")[0]
    assert rating.splitlines()[4].endswith("| 100 |")  # overall: only the rated rows
    ranking = text.split("## Ranking by `score`")[1]
    assert "position=" not in ranking and "| overall | " in ranking and "Δ +0.0000" in ranking


def test_a_first_run_says_only_the_floors_were_checked():
    text = render(CONFIG, _metrics(baseline=False), "blessed")
    assert "No baseline (first push): only the absolute floors were checked." in text
    assert "Δ" not in text


TRAINING = {"train_examples": 16000, "batch_size": 1024, "steps": 48, "best_step": 32, "epochs": 3.072,
            "stop_reason": "stopped early at step 48: no better weighted eval loss for 1 validation",
            "position_curve": {"positions": [0, 1, 2],
                               "bias": {"mobile": [1.0, 0.4, 0.1], "tv": [0.8, 0.5, 0.2]}}}


def test_the_header_says_what_was_evaluated_and_how_it_was_trained():
    metrics = _metrics(baseline=True) | {"spans": ["20260101", "20260102"], "candidate_model": "m/12",
                                           "baseline_model": "serving/3"}
    text = render(CONFIG, metrics, "blessed", training=TRAINING)
    header = text.split("## ")[0]
    assert "| model | `m/12` |" in header and "| baseline | `serving/3` (the served model) |" in header
    assert "| spans | 20260101, 20260102 |" in header
    assert "| examples | 16,000 train (as the Trainer read them), 400 eval |" in header
    assert "48 steps of 1,024 = 3.072 epochs; weights of step 32; stopped early" in header
    assert "at 95% one-sided confidence" in header and "AUC 0.01 or MSE ×1.1" in header


def test_plots_are_drawn_beside_the_report_and_linked(tmp_path):
    metrics = _metrics(baseline=False)
    utilization = {"architecture": "mmoe", "gate_dropout": 0.1, "examples": 400, "polarized_gate_weight": 0.9,
                   "max_polarized_share": 0.5,
                   "heads": {h.name: {"experts": 2, "polarized_share": 0.0, "mean_max_weight": 0.6,
                                      "normalized_entropy": 0.9, "mean_weight_per_expert": [0.4, 0.6]}
                             for h in CONFIG.heads}}
    plots = draw_plots(CONFIG, metrics, str(tmp_path), utilization, TRAINING)
    assert set(plots) == {*CONFIG.head_names, "position", "gates"}
    for path in plots.values():
        with open(tmp_path / path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    text = render(CONFIG, metrics, "blessed", utilization=utilization, training=TRAINING, plots=plots)
    assert "![click: ROC and calibration, overall](report_plots/click.png)" in text
    assert "![learned position bias](report_plots/position_bias.png)" in text
    assert "![mean gate weight per expert](report_plots/gates.png)" in text
    # Without a shallow tower (no curve) and without plots, no empty sections.
    text = render(CONFIG, metrics, "blessed", training=TRAINING | {"position_curve": None})
    assert "Learned position bias" not in text and "![" not in text


def test_the_position_curve_stops_at_the_last_position_the_logs_hold(tmp_path, monkeypatch):
    from watchnext.pipeline import report_plots
    from watchnext.pipeline.report import last_position_seen

    metrics = _metrics(baseline=False)  # positions 0-9: buckets up to 5-9, the empty 10+ dropped
    assert last_position_seen(metrics) == 9
    assert last_position_seen({"heads": {"click": {"slices": {"position=10+": {"n": 3}}}}}) is None
    assert last_position_seen({"heads": {"click": {"slices": {"overall": {"n": 3}}}}}) is None
    drawn = []
    plot = report_plots._pyplot().Axes.plot
    monkeypatch.setattr(report_plots._pyplot().Axes, "plot",
                        lambda ax, x, y, **kw: drawn.append((list(x), list(y))) or plot(ax, x, y, **kw))
    curve = {"positions": list(range(20)), "bias": {"mobile": [float(-p) for p in range(20)]}}
    assert report_plots.position_plot(str(tmp_path), curve, last_seen=9)
    assert drawn == [(list(range(10)), [float(-p) for p in range(10)])]  # never-shown 10-19 left out


def test_one_candidate_per_request_and_a_missing_slice_column_are_notes_not_tables():
    config = CONFIG.replace(features=dataclasses.replace(CONFIG.features, slices=("country",)))
    metrics = _metrics(baseline=True, slate=1, config=config)
    text = render(config, metrics, "blessed")
    assert "> NDCG skipped: every request has one candidate." in text
    assert "> slice `country` skipped: the eval data have no column 'country'." in text
    assert "## Ranking by `score`" not in text and "country=" not in text
    assert "## Ranking by `score`" in render(CONFIG, _metrics(baseline=True), "blessed")
