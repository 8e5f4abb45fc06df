"""report.md from the Evaluator's metrics: the paired comparison, per-head slices, NDCG per request."""

from __future__ import annotations

import dataclasses

from watchnext.components.evaluator.metrics import Scored, evaluate
from watchnext.core.config import DEFAULT_HEADS, Config
from watchnext.pipeline.report import render

import numpy as np

CONFIG = Config().replace(heads=tuple(dataclasses.replace(h, value_threshold=0.0) for h in DEFAULT_HEADS))


def _metrics(baseline: bool) -> dict:
    rng = np.random.default_rng(0)
    n = 400  # 40 requests of 10 on two devices: positions 0-9, so no 10+ bucket
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-x))
    columns = {"click": (rng.random(n) < p).astype(int), "like": (rng.random(n) < p / 2).astype(int),
               "dismiss": (rng.random(n) < 0.1).astype(int), "watch_time": 20 * p,
               "rating": 1 + 4 * p, "rating_present": (np.arange(n) % 4 == 0).astype(int),
               "device": np.repeat(np.array(["mobile", "tv"] * 20, dtype=object), 10),
               "position": np.arange(n) % 10, "request": np.arange(n) // 10}
    served = {"click": p, "like": p / 2, "dismiss": np.full(n, 0.1), "watch_time": 20 * p,
              "rating": 1 + 4 * p, "score": p}
    return evaluate(CONFIG, Scored(columns, served, served if baseline else None))


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
