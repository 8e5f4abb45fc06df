"""bench/deepctr_peer.py: the timing arithmetic, the census featurization, the feeds, the architecture
both models share and the message when DeepCTR is not installed.

Only the last two tests need DeepCTR (`pip install -e '.[peer]'`); without it they are skipped
with that reason, and everything else here runs. No timing is asserted.
"""

from __future__ import annotations

import math
import sys

from bench import census, cli, common, deepctr_peer
from watchnext.core.config import from_dict

import numpy as np
import pytest


def test_summary_reports_medians_their_ratio_and_the_median_of_round_ratios():
    rates = {256: {"watchnext": [10.0, 30.0, 20.0], "deepctr": [20.0, 20.0, 40.0]},
             1024: {"watchnext": [50.0], "deepctr": [40.0]}}
    summary = deepctr_peer.summarize(rates)
    s = summary[256]
    assert s["examples_per_second"] == {"watchnext": 20.0, "deepctr": 20.0}
    assert s["ratio"] == 1.0  # of the medians
    assert s["ratio_by_round"] == [0.5, 1.5, 0.5] and s["ratio_median_of_rounds"] == 0.5
    assert s["by_round"]["deepctr"] == [20.0, 20.0, 40.0]
    assert summary[1024]["ratio"] == 1.25


def test_rate_counts_only_the_steps_after_the_warmup():
    # Step ends at 0, 1 (warm-up), then three timed steps ending at 1.5, 2.0, 2.5 s.
    assert deepctr_peer.examples_per_second([0.0, 1.0, 1.5, 2.0, 2.5], warmup=2, steps=3, batch=10) == 20.0
    with pytest.raises(ValueError, match="expected 2 \\+ 3 step times"):
        deepctr_peer.examples_per_second([0.0, 1.0, 1.5], warmup=2, steps=3, batch=10)
    with pytest.raises(ValueError, match="warmup >= 1"):
        deepctr_peer.examples_per_second([1.0, 2.0], warmup=0, steps=2, batch=10)


def test_models_take_turns_going_first():
    assert [deepctr_peer.round_order(r) for r in range(3)] == [
        ["watchnext", "deepctr"], ["deepctr", "watchnext"], ["watchnext", "deepctr"]]


def test_without_deepctr_the_benchmark_ends_in_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "deepctr", None)  # as if not installed: `import deepctr` fails
    with pytest.raises(cli.MissingExtra, match=r"DeepCTR 0\.9\.4.*pip install -e '\.\[peer\]'"):
        deepctr_peer.require_peer()
    data = census.synthetic_census(str(tmp_path / "census.gz"), rows=50)
    out = tmp_path / "out"
    status = cli.main(["deepctr_peer", "--smoke", "--data", data, "--out", str(out), "--work-dir",
                       str(tmp_path / "work")])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    (line,) = [x for x in err.strip().splitlines() if x.startswith("python -m bench")]
    assert line.startswith("python -m bench deepctr_peer: needs DeepCTR 0.9.4") and line.endswith(
        "run `pip install -e '.[peer]'` from the repository root")
    assert not out.exists()  # nothing written


def _table_config():
    return from_dict({
        "data": {"source": "table", "table": {"columns": ["job", "age", "pay", "rich"]}},
        "features": {"ids": [{"name": "job", "vocabulary": "job", "embedding_dim": 2}],
                     "numeric": ["age", "pay"], "log1p_numeric": ["pay"], "position": "", "device": "",
                     "request_id": ""},
        "heads": [{"name": "rich", "type": "binary", "label": "rich",
                   "label_from": {"column": "rich", "positive_values": ["yes"]}}],
        "model": {"position_mode": "none"}})


def test_featurization_follows_the_preprocessing_contract():
    """Vocabulary by descending frequency with one OOV bucket; log1p then z-score with the train moments."""
    config = _table_config()
    train_rows = [{"job": j, "age": a, "pay": p, "rich": r} for j, a, p, r in
                  [("nurse", 20.0, 0.0, 0), ("clerk", 30.0, 9.0, 1), ("nurse", 40.0, 99.0, 1)]]
    vocabs = deepctr_peer.vocabularies(train_rows, config)
    assert vocabs == {"job": {"nurse": 0, "clerk": 1}}
    train, moments = deepctr_peer.featurize(train_rows, config, vocabs)
    np.testing.assert_array_equal(train.features["job"], [0, 1, 0])
    assert train.features["job"].dtype == np.int64 and train.features["age"].dtype == np.float32
    np.testing.assert_allclose(train.features["age"], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    pay = np.log1p([0.0, 9.0, 99.0])
    np.testing.assert_allclose(train.features["pay"], (pay - pay.mean()) / pay.std(), rtol=1e-6)
    np.testing.assert_array_equal(train.labels["rich"], [0.0, 1.0, 1.0])
    test, _ = deepctr_peer.featurize([{"job": "pilot", "age": 30.0, "pay": 9.0, "rich": 1}], config, vocabs,
                                     moments)
    assert test.features["job"].tolist() == [2]  # unseen in train → the OOV bucket, len(vocabulary)
    assert test.features["age"].tolist() == [0.0] and len(test) == 1


def test_census_rows_are_read_and_split_as_table_example_gen_reads_them(tmp_path):
    config = deepctr_peer.shared_config(deepctr_peer.SIZES["smoke"])
    path = census.synthetic_census(str(tmp_path / "census.gz"), rows=400, seed=3)
    splits, rejected = deepctr_peer.read_splits(path, config)
    assert rejected == 0 and sum(len(rows) for rows in splits.values()) == 400
    assert 150 < len(splits["train"]) < 250 and splits["test"]  # 50/25/25 by the ExampleGen's hash
    assert {row["income"] for row in splits["train"]} == {0, 1}  # derived by label_from
    train, test, vocab_sizes, counts = deepctr_peer.census_splits(path, config)
    assert counts["train_rows"] == len(train) == len(splits["train"]) and len(test) == counts["test_rows"]
    assert set(vocab_sizes) == {f.vocabulary for f in config.features.ids}
    assert set(train.labels) == {"income", "never_married"}


def test_both_feeds_hand_out_the_same_whole_batches(tmp_path):
    config = deepctr_peer.shared_config(deepctr_peer.SIZES["smoke"])
    path = census.synthetic_census(str(tmp_path / "census.gz"), rows=400, seed=3)
    train, _, _, _ = deepctr_peer.census_splits(path, config)
    ours, theirs, batches = deepctr_peer.in_memory_feeds(train, config, 32, start=1)
    assert batches == len(train) // 32
    features, (income, married) = next(iter(theirs))
    first = next(iter(ours))
    assert first["class_worker"].dtype.name == "int64" and features["class_worker"].dtype.name == "int32"
    assert tuple(first["age"].shape) == (32,) and tuple(features["age"].shape) == (32, 1)
    for name in ("class_worker", "age"):
        np.testing.assert_array_equal(first[name].numpy(), features[name].numpy()[:, 0])
        np.testing.assert_array_equal(first[name].numpy(), train.features[name][32:64])  # starts at batch 1
    np.testing.assert_array_equal(first["income"].numpy(), income.numpy()[:, 0])
    np.testing.assert_array_equal(first["never_married"].numpy(), married.numpy()[:, 0])
    with pytest.raises(ValueError, match="do not fill one batch of 100000"):
        deepctr_peer.in_memory_feeds(train, config, 100000)


def _vocab_sizes(config) -> dict[str, int]:
    return {f.vocabulary: 3 + i % 5 for i, f in enumerate(config.features.ids)}


def _build(model, config) -> None:
    """Call a watchnext model once on a batch of zeros (a subclassed model makes its weights then)."""
    import tensorflow as tf

    batch = {f.name: tf.zeros([2], tf.int64) for f in config.features.ids}
    batch.update({name: tf.zeros([2]) for name in config.features.numeric})
    model(batch)


def test_watchnext_side_holds_the_weights_of_deepctrs_mmoe():
    """The shapes DeepCTR 0.9.4's MMOE creates for this config (deepctr/models/multitask/mmoe.py: per
    expert a DNN of kernels and biases, per task a bias-free softmax gate on the inputs, a tower DNN,
    a bias-free Dense(1) and PredictionLayer's one bias), written out here, so the watchnext side is
    checked without DeepCTR installed."""
    sizes = deepctr_peer.SIZES["quick"]
    config = deepctr_peer.shared_config(sizes)
    vocab = _vocab_sizes(config)
    model = deepctr_peer.watchnext_model(config, vocab, seed=0)
    _build(model, config)
    width = sum(f.embedding_dim for f in config.features.ids) + len(config.features.numeric)
    assert width == 131
    expected = [(vocab[f.vocabulary] + 1, 4) for f in config.features.ids]
    for _ in range(sizes.num_experts):
        expected += [(131, 256), (256,), (256, 128), (128,)]
    for _ in config.heads:
        expected += [(131, sizes.num_experts), (128, 64), (64,), (64, 1), (1,)]
    assert deepctr_peer.trainable_shapes(model) == sorted(expected)
    assert model.shallow_tower is None and model.mixing.gates[0].dropout_rate == 0.0
    assert not model.metrics_in_training


def test_both_models_have_the_same_architecture():
    pytest.importorskip("deepctr", reason="DeepCTR is the optional extra: pip install -e '.[peer]'")
    config = deepctr_peer.shared_config(deepctr_peer.SIZES["quick"])
    vocab = _vocab_sizes(config)
    ours = deepctr_peer.watchnext_model(config, vocab, seed=0)
    _build(ours, config)
    theirs = deepctr_peer.deepctr_model(config, vocab, seed=0)
    assert deepctr_peer.trainable_shapes(ours) == deepctr_peer.trainable_shapes(theirs)
    assert type(theirs.optimizer) is type(ours.optimizer)
    assert math.isclose(float(theirs.optimizer.learning_rate), float(ours.optimizer.learning_rate))


@pytest.mark.slow
def test_one_round_trains_both_models_on_synthetic_census_rows(tmp_path):
    """One batch size, one round of a few steps (about half a minute, mostly tracing)."""
    pytest.importorskip("deepctr", reason="DeepCTR is the optional extra: pip install -e '.[peer]'")
    data = census.synthetic_census(str(tmp_path / "census.gz"), rows=800, seed=1)
    sizes = deepctr_peer.Sizes(steps=2, warmup=1, rounds=1, batches=(64,))
    result = deepctr_peer.run(common.Context(str(tmp_path), data_path=data), sizes)
    (s,) = result.figures["summary"].values()
    assert all(v > 0 for v in s["examples_per_second"].values()) and math.isfinite(s["ratio"])
    assert result.figures["same_shapes"]
    assert set(result.figures["test_auc"]) == {"watchnext b=64", "deepctr b=64"}
    assert all(0.0 <= auc <= 1.0 for aucs in result.figures["test_auc"].values() for auc in aucs.values())
