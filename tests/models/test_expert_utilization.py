"""Gate statistics and the polarization alarm, measured on a real model and rendered in report.md."""

from __future__ import annotations

import dataclasses

from watchnext.core.config import Config
from watchnext.models import expert_utilization
from watchnext.models.model import build_model
from watchnext.pipeline.report import render

import numpy as np
import pytest
import tensorflow as tf


def test_gate_statistics_of_a_polarized_and_a_uniform_gate():
    polarized = np.tile([[0.97, 0.01, 0.01, 0.01]], (10, 1))
    uniform = np.full((10, 4), 0.25)
    p = expert_utilization.gate_statistics(polarized, 0.9)
    u = expert_utilization.gate_statistics(uniform, 0.9)
    assert p["polarized_share"] == 1.0 and p["top_expert_histogram"] == [10, 0, 0, 0]
    assert u["polarized_share"] == 0.0 and u["normalized_entropy"] == pytest.approx(1.0)
    assert p["normalized_entropy"] < 0.2


def _summary(share: float, experts: int = 4) -> dict:
    return {"architecture": "mmoe", "gate_dropout": 0.1, "polarized_gate_weight": 0.9,
            "max_polarized_share": 0.5, "examples": 1000,
            "heads": {"click": {"experts": experts, "polarized_share": share, "mean_max_weight": 0.9,
                                "normalized_entropy": 0.1, "mean_weight_per_expert": [0.7, 0.1, 0.1, 0.1],
                                "top_expert_histogram": [10, 900, 50, 40]}}}


def test_alarm_names_the_head_share_and_favourite_expert():
    (alarm,) = expert_utilization.alarms(_summary(0.8))
    assert "head 'click'" in alarm and "80%" in alarm and "expert 1" in alarm and "gate_dropout" in alarm
    assert expert_utilization.alarms(_summary(0.4)) == []
    assert expert_utilization.alarms(_summary(1.0, experts=1)) == []  # shared_bottom: nothing to polarize


def test_report_shows_the_table_and_the_alarm():
    text = render(Config(), {}, "blessed", utilization=_summary(0.8))
    assert "## Expert utilization (mmoe" in text and "| click | 4 | 80% |" in text
    assert "**ALARM** gate polarization: head 'click'" in text
    assert "No gate polarization alarm." in render(Config(), {}, "blessed", utilization=_summary(0.1))


def test_measure_reads_every_heads_gate_on_transformed_batches(tmp_path):
    config = Config()
    config = config.replace(model=dataclasses.replace(config.model, num_experts=3))
    sizes = {"user": 5, "video": 7, "device": 3, "country": 2}
    model = build_model(config, sizes)
    batch = 6
    features = {f.name: tf.zeros([batch, f.max_length] if f.multivalent else [batch], tf.int64)
                for f in config.features.ids}
    features.update({name: tf.zeros([batch]) for name in config.features.numeric})
    dataset = tf.data.Dataset.from_tensors(features).repeat()
    summary = expert_utilization.measure(model, dataset, steps=2, config=config)
    assert summary["examples"] == 2 * batch
    assert set(summary["heads"]) == set(config.head_names)
    for stats in summary["heads"].values():
        assert stats["experts"] == 3
        assert sum(stats["mean_weight_per_expert"]) == pytest.approx(1.0, abs=1e-5)
    path = expert_utilization.write(summary, str(tmp_path / "model_run"))
    assert expert_utilization.read(str(tmp_path / "model_run")) == summary and path.endswith(".json")
