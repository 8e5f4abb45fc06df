"""Issue 4: the default model learns every binary head from simulated logs, end to end.

One simulated day → the ExampleGen's Beam join and request_id split → the real
preprocessing_fn analysed and applied by tf.Transform on Beam → `build_model(Config(), …)`
trained a few hundred steps → AUC per binary head on the eval split, scored as served:
through the saved transform graph and WITHOUT the position key (the position-aware
scores are reported beside them). Simulator truth gives each head's oracle AUC.

Thresholds, per head: AUC > 0.5 + 5·SE₀, with SE₀ the standard error of the AUC of a
scorer unrelated to the labels on this eval set (Hanley–McNeil at A = ½, the exact
Mann–Whitney null variance (n₁ + n₀ + 1)/(12·n₁·n₀)). A 5-SE excess happens by luck with
probability < 3·10⁻⁷ per head. With 60k impressions, seed 7, the eval split has 11,460
impressions: click 1,521 positives (SE₀ 0.0079, bound 0.540), like 501 (SE₀ 0.0132, bound
0.566), dismiss 470 (SE₀ 0.0136, bound 0.568). Oracle AUCs there: click 0.884, like 0.945,
dismiss 0.836. Measured in two runs while writing this test (500 steps, 2 busy cores),
served: click 0.666 / 0.677, like 0.739 / 0.749, dismiss 0.608 / 0.614 (21–22, 18–19 and
8.0–8.4 SE₀ above chance; 43–46 %, 54–56 % and 32–34 % of the oracle's gap). The runs
differ, probably through the order in which Beam wrote the train examples (not pinned down).
Dismiss is the weakest head: its eval AUC peaks near 0.62 after 300–500 steps and then
drifts down (overfitting), below a logistic regression on the numeric features and device
(≈ 0.64 on a 40k-impression run).

Sanity (not a quality bar): no head may beat its oracle — the Bayes-optimal scorer of
these labels — by more than 5·SE₀, which would mean labels leaked into the features.
"""

from __future__ import annotations

import dataclasses
import time

from watchnext.core.config import Config
from watchnext.pipeline import datasets, oracle_scores

import pytest

pytestmark = pytest.mark.slow

IMPRESSIONS = 60_000
SEED = 7
TRAIN_STEPS = 500
NULL_SE_MULTIPLE = 5.0


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """(data, served HeadScores, position-aware HeadScores, timings) of one training run."""
    # The step counts here were calibrated at batch 256 (learning rate 0.003), the defaults before
    # training.batch_size became 1024: keep them, so the steps mean the same number of examples.
    config = Config()
    config = config.replace(training=dataclasses.replace(config.training, batch_size=256,
                                                         learning_rate=0.003))
    t0 = time.time()
    data = datasets.featurized_simulation(str(tmp_path_factory.mktemp("learning")), IMPRESSIONS, SEED, config)
    t1 = time.time()
    model = datasets.train_model(data, config, TRAIN_STEPS)
    t2 = time.time()
    served_inputs = data.eval_features(position=False)
    assert config.features.position not in served_inputs
    served = oracle_scores.score_heads(data, oracle_scores.predict(model, served_inputs))
    with_position = oracle_scores.score_heads(
        data, oracle_scores.predict(model, data.eval_features(position=True)))
    timings = {"featurize": t1 - t0, "train": t2 - t1, "evaluate": time.time() - t2}
    return data, served, with_position, timings


def _table(data, served, with_position, timings) -> str:
    lines = [f"learning test: {data.counts}, {TRAIN_STEPS} steps; seconds: "
             + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
             f"{'head':8} {'pos':>5} {'SE0':>7} {'bound':>6} {'served':>7} {'z':>5} {'w/ pos':>7} "
             f"{'oracle':>7} {'relev.':>7} {'share':>6}"]
    for s, p in zip(served, with_position, strict=True):
        bound = 0.5 + NULL_SE_MULTIPLE * s.null_se
        lines.append(f"{s.head:8} {s.positives:5d} {s.null_se:7.4f} {bound:6.3f} "
                     f"{s.auc:7.4f} {s.z:5.1f} {p.auc:7.4f} {s.oracle_auc:7.4f} "
                     f"{s.relevance_oracle_auc:7.4f} {s.oracle_share:6.1%}")
    lines.append("served = no position key; share = (served − ½)/(oracle − ½); relev. = AUC of "
                 "P(label | examined), the truth with position removed")
    return "\n".join(lines)


def test_every_binary_head_learns_clearly_above_chance(learned, capsys):
    data, served, with_position, timings = learned
    with capsys.disabled():
        print("\n" + _table(data, served, with_position, timings))
    assert [s.head for s in served] == ["click", "like", "dismiss"]
    failed = {s.head: f"AUC {s.auc:.4f} <= {0.5 + NULL_SE_MULTIPLE * s.null_se:.4f}" for s in served
              if s.auc <= 0.5 + NULL_SE_MULTIPLE * s.null_se}
    assert not failed, f"served heads not clearly above chance: {failed}"


def test_no_head_beats_the_oracle(learned):
    _, served, with_position, _ = learned
    for s in served + with_position:
        assert s.auc < s.oracle_auc + NULL_SE_MULTIPLE * s.null_se, (
            f"{s.head}: AUC {s.auc:.4f} beats the Bayes-optimal {s.oracle_auc:.4f}; do labels leak?")


def test_oracle_is_well_above_chance(learned):
    """Guards the thresholds: a bound of 0.5 + 5·SE₀ only means something if the heads can learn."""
    _, served, _, _ = learned
    for s in served:
        assert s.oracle_auc > 0.5 + 4 * NULL_SE_MULTIPLE * s.null_se, s
