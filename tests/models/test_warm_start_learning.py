"""Issue 9: a model warm-started from yesterday's reaches yesterday's quality in far fewer steps.

Two consecutive days of one simulated world (same users and videos, different requests),
each joined, split and featurized by its own tf.Transform run, as the daily pipeline does
with a window of one span: each day's vocabularies are recomputed and ordered by that
day's frequencies, so an id's embedding row moves between days and the warm start has
to remap rows by id (models/warm_start.py), which is the real case.

Day 1 trains from scratch for `DAY1_STEPS` and is exported with models/export.py as the
Trainer exports it; its served AUC on day 1's eval split, per head in `TARGET_HEADS`, is
the target. On day 2 a cold model and a model warm-started from that SavedModel (as
run_fn does it: build, one call to create the variables, `warm_start` with day 2's
vocabularies, compile with a fresh Adam) train on day 2 and are scored as served (no
position) on day 2's eval split at step 0 and every `EVAL_EVERY` steps, until every
target head has reached its target or the cold budget runs out. Asserted: warm needs at
most half the steps cold needs, per head, and warm at step 0 is far above chance and far
above the untrained model.

Measured in two runs while writing this test (40k impressions/day, seed 7, default model,
2 cores under load average 6-7): day 1 after 500 steps click 0.668 / 0.669, like 0.742 /
0.743; on day 2 warm is at click 0.690, like 0.768 before any step (cold: 0.52-0.54,
0.48-0.54); cold reaches the click target after 400 / 450 steps and the like target after
500 / 475; warm at step 0. Beyond the test (one run trained both to 800 steps): warm
peaked near 150 steps (click 0.718, like 0.810), then drifted down as it overfit the one
day (800 steps: click 0.672, like 0.773; cold at 800: 0.678, 0.755), so a warm-started
daily job wants fewer steps than a cold one. 6.5 minutes under that load, half of it the
two Beam + tf.Transform featurizations, hence `slow`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from watchnext.core.config import Config
from watchnext.models import features
from watchnext.models.export import export_model
from watchnext.models.model import build_model
from watchnext.models.warm_start import WarmStartReport, warm_start
from watchnext.pipeline import datasets, oracle_scores

import numpy as np
import pytest
import tf_keras

pytestmark = pytest.mark.slow

IMPRESSIONS_PER_DAY = 40_000
SEED = 7
# Near day 1's plateau (click AUC still rising by < 0.01 per 100 steps at 500 on this data).
DAY1_STEPS = 500
EVAL_EVERY = 25
# Cold start may take this many steps to reach the targets before it counts as "never".
COLD_BUDGET = 2 * DAY1_STEPS
# The heads whose day-1 AUC sets a target (the binary heads the pipeline's blessing floors).
TARGET_HEADS = ("click", "like")
# Warm must reach each target in at most this share of the steps cold needs.
MAX_WARM_SHARE = 0.5
NULL_SE_MULTIPLE = 5.0


@dataclass
class Curve:
    """Served AUC per head against training steps; `reached[head]` is the first step at target."""

    aucs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    reached: dict[str, int] = field(default_factory=dict)


class AucCurve(tf_keras.callbacks.Callback):
    """Scores the model as served every `every` steps; stops once every head reached its target."""

    def __init__(self, data: datasets.FeaturizedSimulation, inputs: dict[str, np.ndarray],
                 targets: dict[str, float], every: int) -> None:
        super().__init__()
        self.data, self.inputs, self.targets, self.every = data, inputs, targets, every
        self.curve = Curve()

    def score(self, step: int) -> None:
        aucs = served_aucs(self.model, self.data, self.inputs)
        self.curve.aucs.append((step, aucs))
        for head, target in self.targets.items():
            if aucs[head] >= target:
                self.curve.reached.setdefault(head, step)
        if set(self.curve.reached) == set(self.targets):
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if (batch + 1) % self.every == 0:
            self.score(batch + 1)


def served_aucs(model: Any, data: datasets.FeaturizedSimulation, inputs: dict[str, np.ndarray]
                ) -> dict[str, float]:
    """AUC per binary head, scored as served (inputs without position)."""
    predictions = oracle_scores.predict(model, inputs)
    return {head: oracle_scores.auc(predictions[head], data.eval_labels[data.config.head(head).label])
            for head in oracle_scores.binary_heads(data.config)}


def train_to_targets(model: Any, data: datasets.FeaturizedSimulation, inputs: dict[str, np.ndarray],
                     targets: dict[str, float], budget: int) -> Curve:
    """Fit `model` (compiled) on `data`, scoring every EVAL_EVERY steps, until it reaches `targets`."""
    t = data.config.training
    callback = AucCurve(data, inputs, targets, EVAL_EVERY)
    callback.set_model(model)
    callback.score(0)
    if set(callback.curve.reached) != set(targets):
        model.fit(data.train_dataset(t.batch_size, t.seed), steps_per_epoch=budget, epochs=1, verbose=0,
                  callbacks=[callback])
    return callback.curve


def warm_started_model(data: datasets.FeaturizedSimulation, base_model_dir: str
                       ) -> tuple[Any, WarmStartReport]:
    """The model run_fn builds when the Trainer has a base_model (models/trainer.py)."""
    config, t = data.config, data.config.training
    tf_keras.utils.set_random_seed(t.seed)
    tf_transform_output = data.tf_transform_output()
    model = build_model(config, data.vocab_sizes())
    model(next(iter(data.train_dataset(t.batch_size, t.seed))), training=False)
    vocabularies = {name: tf_transform_output.vocabulary_by_name(name)
                    for name in features.vocabulary_names(config)}
    report = warm_start(model, base_model_dir, vocabularies, config)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=t.learning_rate))
    return model, report


def cold_model(data: datasets.FeaturizedSimulation) -> Any:
    """The model run_fn builds without a base_model."""
    t = data.config.training
    tf_keras.utils.set_random_seed(t.seed)
    model = build_model(data.config, data.vocab_sizes())
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=t.learning_rate))
    return model


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    """Day 1 trained and exported; day 2's cold and warm curves; what the tests check."""
    # The step counts here were calibrated at batch 256 (learning rate 0.003), the defaults before
    # training.batch_size became 1024: keep them, so the steps mean the same number of examples.
    config = Config()
    config = config.replace(training=dataclasses.replace(config.training, batch_size=256,
                                                         learning_rate=0.003))
    root = tmp_path_factory.mktemp("warm_start_learning")
    seconds: dict[str, float] = {}
    t0 = time.time()
    day1 = datasets.featurized_simulation(str(root / "day1"), IMPRESSIONS_PER_DAY, SEED, config, day=0)
    day2 = datasets.featurized_simulation(str(root / "day2"), IMPRESSIONS_PER_DAY, SEED, config, day=1)
    seconds["featurize 2 days"] = time.time() - t0

    t0 = time.time()
    base = datasets.train_model(day1, config, DAY1_STEPS)
    day1_aucs = served_aucs(base, day1, day1.eval_features(position=False))
    base_dir = str(root / "day1_model")
    export_model(base, day1.tf_transform_output(), config, base_dir)
    seconds["day 1 train + export"] = time.time() - t0

    targets = {head: day1_aucs[head] for head in TARGET_HEADS}
    inputs = day2.eval_features(position=False)
    t0 = time.time()
    cold = train_to_targets(cold_model(day2), day2, inputs, targets, COLD_BUDGET)
    seconds["day 2 cold"] = time.time() - t0
    t0 = time.time()
    warm, report = warm_started_model(day2, base_dir)
    curve = train_to_targets(warm, day2, inputs, targets, COLD_BUDGET)
    seconds["day 2 warm"] = time.time() - t0
    return {"day1": day1, "day2": day2, "day1_aucs": day1_aucs, "targets": targets, "cold": cold,
            "warm": curve, "report": report, "seconds": seconds}


def _steps(curve: Curve, head: str) -> str:
    return str(curve.reached[head]) if head in curve.reached else f"> {COLD_BUDGET} (never)"


def _summary(r: dict[str, Any]) -> str:
    day2, cold, warm = r["day2"], r["cold"], r["warm"]
    lines = [
        f"warm-start learning: {IMPRESSIONS_PER_DAY} impressions/day, seed {SEED}, day 1 trained "
        f"{DAY1_STEPS} steps x {day2.config.training.batch_size}; seconds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in r["seconds"].items()),
        "day 1 served AUC on day 1 eval: " + ", ".join(f"{k} {v:.4f}" for k, v in r["day1_aucs"].items()),
        "day 2 at step 0: warm " + ", ".join(f"{k} {v:.4f}" for k, v in warm.aucs[0][1].items())
        + "; cold " + ", ".join(f"{k} {v:.4f}" for k, v in cold.aucs[0][1].items()),
    ]
    for head, target in r["targets"].items():
        lines.append(f"{head}: target {target:.4f} reached by cold at step {_steps(cold, head)}, "
                     f"by warm at step {_steps(warm, head)}")
        for name, curve in (("cold", cold), ("warm", warm)):
            lines.append(f"  {name}: " + " ".join(f"{s}:{a[head]:.3f}" for s, a in curve.aucs))
    lines.append(f"embeddings remapped (rows kept, rows): {r['report'].remapped}; "
                 f"skipped: {r['report'].skipped}")
    return "\n".join(lines)


def test_warm_start_reaches_day_one_quality_in_clearly_fewer_steps(two_days, capsys):
    with capsys.disabled():
        print("\n" + _summary(two_days))
    cold, warm = two_days["cold"], two_days["warm"]
    for head in TARGET_HEADS:
        assert head in warm.reached, f"warm start never reached day 1's {head} AUC: {warm.aucs}"
        cold_steps = cold.reached.get(head, COLD_BUDGET + EVAL_EVERY)
        assert warm.reached[head] <= MAX_WARM_SHARE * cold_steps, (
            f"{head}: warm needed {warm.reached[head]} steps, cold {_steps(cold, head)}: not clearly fewer")


def test_warm_model_is_far_above_chance_before_any_step(two_days):
    day2 = two_days["day2"]
    for head in TARGET_HEADS:
        se = oracle_scores.null_auc_standard_error(day2.eval_labels[day2.config.head(head).label])
        warm_at_0, cold_at_0 = two_days["warm"].aucs[0][1][head], two_days["cold"].aucs[0][1][head]
        assert warm_at_0 > 0.5 + NULL_SE_MULTIPLE * se, (head, warm_at_0, se)
        # The untrained model scores the same examples: warm's head start is the base model's.
        assert warm_at_0 > cold_at_0 + NULL_SE_MULTIPLE * se, (head, warm_at_0, cold_at_0, se)


def test_warm_start_remapped_embeddings_by_id_across_the_two_vocabularies(two_days):
    """Each day has its own Transform: vocabularies share most ids but order them differently."""
    report, day1, day2 = two_days["report"], two_days["day1"], two_days["day2"]
    reordered = []
    for vocab in features.vocabulary_names(day2.config):
        old = day1.tf_transform_output().vocabulary_by_name(vocab)
        new = day2.tf_transform_output().vocabulary_by_name(vocab)
        if old != new:
            reordered.append(vocab)
        kept, _ = report.remapped[f"feature_encoder/{vocab}_embedding/embeddings:0"]
        assert kept == len(set(old) & set(new)), (vocab, kept, len(set(old) & set(new)))
    # Users and videos are many and their daily frequencies differ: their rows must have moved.
    assert len(reordered) >= 2, f"only {reordered} changed between days; the remap is barely exercised"
    # Dense weights all carried over (the shallow tower's may restart if the device order changed).
    assert not [name for name in report.skipped if not name.startswith("shallow_tower/")], report.skipped
