"""Tests of models/model.py: the encoder, losses, serving outputs, training and export.

Everything runs on a tiny config and synthetic transformed features built here. The
architecture × position-mode matrix runs a covering subset by default (every architecture
and every position mode at least once); the other combinations and the Keras-model export
of every architecture but the default are marked slow.
"""

from __future__ import annotations

import dataclasses
import math

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import ARCHITECTURES, POSITION_MODES, Config, NumericEmbedding, from_dict
from watchnext.models import heads as H
from watchnext.models import model as M
from watchnext.models.layers import CombinedScore, FeatureEncoder

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

# The fixture's names; the model itself only ever reads them from the config.
USER, CANDIDATE, HISTORY = "user_id", "candidate_video_id", "watch_history"
DEVICE, DURATION = "device", "duration"
VOCAB_SIZES = {"user": 6, "video": 10, "device": 2}
HISTORY_LENGTH = 3


def tiny_config(architecture: str = "mmoe", position_mode: str = "shallow_tower", **model: object) -> Config:
    """Three heads that cover every loss path: binary + position bias, log1p regression, masked rating."""
    return from_dict({
        "features": {
            "ids": [
                {"name": USER, "vocabulary": "user", "embedding_dim": 4, "oov_buckets": 1},
                {"name": CANDIDATE, "vocabulary": "video", "embedding_dim": 4, "oov_buckets": 1},
                {"name": HISTORY, "vocabulary": "video", "embedding_dim": 4, "oov_buckets": 1,
                 "multivalent": True, "max_length": HISTORY_LENGTH},
                {"name": DEVICE, "vocabulary": "device", "embedding_dim": 2, "oov_buckets": 1},
            ],
            "numeric": [DURATION],
            "log1p_numeric": [],
            "max_position": 5,
        },
        "heads": [
            {"name": "click", "type": "binary", "label": "click", "position_bias": True},
            {"name": "watch_time", "type": "regression", "label": "watch_time", "loss_weight": 0.5,
             "score_weight": 0.5, "score_form": "log1p", "label_transform": "log1p", "position_bias": True},
            {"name": "rating", "type": "regression", "label": "rating", "group": "satisfaction",
             "loss_weight": 0.5, "score_weight": 0.25, "presence": "rating_present"},
        ],
        "model": {"architecture": architecture, "position_mode": position_mode, "shared_hidden_units": 8,
                  "num_experts": 2, "expert_units": [4], "task_experts": 1, "ple_levels": 2,
                  "tower_units": [4], "shallow_tower_units": [4], "position_embedding_dim": 2, **model},
    })


def make_batch(config: Config, n: int, seed: int = 0, position: bool = True, labels: bool = True
               ) -> dict[str, np.ndarray]:
    """Transformed features (the preprocessing contract) with labels the model can learn."""
    rng = np.random.default_rng(seed)
    batch: dict[str, np.ndarray] = {}
    for f in config.features.ids:
        rows = VOCAB_SIZES[f.vocabulary] + f.oov_buckets
        if f.multivalent:
            ids = rng.integers(0, rows, (n, f.max_length))
            ids[rng.random((n, f.max_length)) < 0.3] = -1  # padding
            ids[0] = -1  # one user with no history at all
            batch[f.name] = ids.astype(np.int64)
        else:
            batch[f.name] = rng.integers(0, rows, n).astype(np.int64)
    for name in config.features.numeric:
        batch[name] = rng.normal(size=n).astype(np.float32)
    if position:
        max_position = config.features.max_position
        batch[config.features.position] = rng.integers(-1, max_position + 2, n).astype(np.int64)
    if labels:
        click = (batch[CANDIDATE] % 2 == 0).astype(np.float32)
        batch["click"] = click
        batch["watch_time"] = (click * (20.0 + 10.0 * batch[DURATION])).clip(0).astype(np.float32)
        batch["rating"] = (1.0 + batch[USER] % 5).astype(np.float32)
        batch["rating_present"] = (rng.random(n) < 0.5).astype(np.float32)
    return batch


def serving_features(batch: dict[str, np.ndarray], config: Config) -> dict[str, tf.Tensor]:
    """What TF Serving hands the model: the inputs without position and labels."""
    drop = set(config.label_keys) | {config.features.position}
    return {k: tf.constant(v) for k, v in batch.items() if k not in drop}


@pytest.fixture(autouse=True)
def _seed() -> None:
    tf_keras.utils.set_random_seed(7)


# ---------------------------------------------------------------------------
# FeatureEncoder


def test_encoder_shares_tables_per_vocabulary_and_mean_pools_history() -> None:
    config = tiny_config()
    encoder = FeatureEncoder(config, VOCAB_SIZES)
    batch = make_batch(config, 6, labels=False)
    x = encoder(batch).numpy()
    assert x.shape == (6, encoder.output_dim) == (6, 4 + 4 + 4 + 2 + 1)
    assert sorted(encoder.tables) == sorted(VOCAB_SIZES)
    video = encoder.tables["video"].embeddings.numpy()
    assert video.shape == (VOCAB_SIZES["video"] + 1, 4)
    np.testing.assert_allclose(x[:, 4:8], video[batch[CANDIDATE]], rtol=1e-6)
    history = x[:, 8:12]
    np.testing.assert_array_equal(history[0], np.zeros(4))  # all padding → zero vector
    for i in range(1, 6):
        ids = batch[HISTORY][i][batch[HISTORY][i] >= 0]
        want = video[ids].mean(axis=0) if len(ids) else np.zeros(4)
        np.testing.assert_allclose(history[i], want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(x[:, -1], batch[DURATION], rtol=1e-6)
    # [B, 1] ids and numeric values give the same vector.
    column = {k: (v[:, None] if v.ndim == 1 else v) for k, v in batch.items()}
    np.testing.assert_allclose(encoder(column).numpy(), x, rtol=1e-6)


def test_encoder_input_feature_mode_embeds_position_with_a_missing_row() -> None:
    config = tiny_config(position_mode="input_feature")
    encoder = FeatureEncoder(config, VOCAB_SIZES)
    batch = make_batch(config, 5, labels=False)
    batch[config.features.position] = np.array([-1, 0, 4, 7, -1], np.int64)
    x = encoder(batch, training=False).numpy()
    table = encoder.position_embedding.embeddings.numpy()
    np.testing.assert_allclose(x[:, -2:], table[[0, 1, 5, 5, 0]], rtol=1e-6)  # 7 clips to 4 → row 5
    # An absent position (serving) reads the "missing" row.
    del batch[config.features.position]
    np.testing.assert_allclose(encoder(batch).numpy()[:, -2:], np.tile(table[0], (5, 1)), rtol=1e-6)
    assert FeatureEncoder(tiny_config(position_mode="none"), VOCAB_SIZES).output_dim == x.shape[1] - 2


def test_encoder_embeds_quantile_bins_and_piecewise_linear_codes_of_numeric_features() -> None:
    base = tiny_config()
    features = dataclasses.replace(base.features, numeric=(DURATION, "age"), numeric_embeddings=(
        NumericEmbedding(DURATION, "buckets", buckets=5, embedding_dim=3, keep_value=False),
        NumericEmbedding("age", "piecewise_linear", buckets=4, embedding_dim=2)))
    config = base.replace(features=features)
    encoder = FeatureEncoder(config, VOCAB_SIZES)
    batch = make_batch(config, 6, labels=False)
    batch[f"{DURATION}_buckets"] = np.array([0, 1, 4, 4, 2, 9], np.int64)  # 9: out of range, clipped
    batch["age_piecewise_linear"] = np.random.default_rng(1).random((6, 4)).astype(np.float32)
    x = encoder(batch).numpy()
    # ids 4 + 4 + 4 + 2; duration: its bin's embedding only (keep_value false); age: value + 2.
    assert x.shape == (6, encoder.output_dim) == (6, 14 + 3 + 1 + 2)
    bins = encoder.numeric_encoders[DURATION].embeddings.numpy()
    assert bins.shape == (5, 3)
    np.testing.assert_allclose(x[:, 14:17], bins[[0, 1, 4, 4, 2, 4]], rtol=1e-6)
    np.testing.assert_allclose(x[:, 17], batch["age"], rtol=1e-6)
    dense = encoder.numeric_encoders["age"]
    want = np.maximum(batch["age_piecewise_linear"] @ dense.kernel.numpy() + dense.bias.numpy(), 0.0)
    np.testing.assert_allclose(x[:, 18:], want, rtol=1e-5, atol=1e-6)
    del batch["age_piecewise_linear"]
    with pytest.raises(KeyError, match=r"age_piecewise_linear.*features\.numeric_embeddings"):
        encoder(batch)


def test_encoder_names_what_is_wrong_with_vocabularies() -> None:
    with pytest.raises(KeyError, match="'video'"):
        FeatureEncoder(tiny_config(), {"user": 6, "device": 2})
    base = tiny_config()
    ids = list(base.to_dict()["features"]["ids"])
    ids[2] = {**ids[2], "embedding_dim": 8}
    bad = from_dict({**base.to_dict(), "features": {**base.to_dict()["features"], "ids": ids}})
    with pytest.raises(ValueError, match="share vocabulary 'video'"):
        FeatureEncoder(bad, VOCAB_SIZES)


# ---------------------------------------------------------------------------
# Outputs


def test_model_outputs_serving_scale_predictions_and_score() -> None:
    config = tiny_config()
    model = M.build_model(config, VOCAB_SIZES)
    features = serving_features(make_batch(config, 16), config)
    out = model(features)
    assert list(out) == [*config.head_names, M.SCORE_KEY]
    assert all(v.shape == (16,) for v in out.values())
    click, watch_time = out["click"].numpy(), out["watch_time"].numpy()
    assert ((click > 0) & (click < 1)).all()
    assert (watch_time >= 0).all()
    logits, _ = model.logits(features)
    np.testing.assert_allclose(watch_time, np.expm1(np.clip(logits[1].numpy(), 0, None)), rtol=1e-5)
    np.testing.assert_allclose(out["rating"].numpy(), logits[2].numpy(), rtol=1e-6)
    want = CombinedScore.from_heads(config.heads)([out[h] for h in config.head_names]).numpy()
    np.testing.assert_allclose(out[M.SCORE_KEY].numpy(), want, rtol=1e-6)
    # Per-candidate score weights replace the config's: only click's exponent left → score = p(click).
    weights = tf.constant([[1.0, 0.0, 0.0]] * 16)
    only_click = model({**features, M.SCORE_WEIGHTS_KEY: weights})[M.SCORE_KEY].numpy()
    np.testing.assert_allclose(only_click, click, rtol=1e-5)


@pytest.mark.parametrize("form", ["logit", "log_examination"])
def test_served_predictions_carry_no_position_bias(form: str) -> None:
    config = tiny_config(position_bias_form=form)
    model = M.build_model(config, VOCAB_SIZES)
    batch = make_batch(config, 32)
    position = config.features.position
    served = model(serving_features(batch, config))
    missing = {**serving_features(batch, config), position: -tf.ones([32], tf.int64)}
    for name, value in model(missing).items():
        np.testing.assert_allclose(value.numpy(), served[name].numpy(), rtol=1e-6)
    # With logged positions the shallow tower's bias moves exactly the position-biased heads' logits.
    unbiased, _ = model.logits(serving_features(batch, config))
    biased, _ = model.logits({**serving_features(batch, config), position: tf.constant(batch[position])})
    present = batch[position] >= 0
    for head, before, after in zip(config.heads, unbiased, biased, strict=True):
        moved = before.numpy() != after.numpy()
        assert moved[present].all() if head.position_bias else not moved.any(), head.name
        assert not moved[~present].any(), head.name


def test_a_model_first_called_without_position_has_all_its_variables() -> None:
    config = tiny_config()
    model = M.build_model(config, VOCAB_SIZES)
    batch = make_batch(config, 8)
    model(serving_features(batch, config))
    names = sorted(v.name for v in model.variables)
    assert any("shallow_tower" in n for n in names)
    model.compute_loss({k: tf.constant(v) for k, v in batch.items()}, training=True)
    assert sorted(v.name for v in model.variables) == names


def test_gate_weights_per_head() -> None:
    config = tiny_config()
    model = M.build_model(config, VOCAB_SIZES)
    gates = model.gate_weights(serving_features(make_batch(config, 8), config))
    assert list(gates) == config.head_names
    for g in gates.values():
        assert g.shape == (8, config.model.num_experts)
        np.testing.assert_allclose(g.numpy().sum(axis=1), 1.0, rtol=1e-6)


# ---------------------------------------------------------------------------
# Losses


def _bce_from_logits(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def test_loss_is_the_weighted_sum_of_head_losses_with_rating_masked() -> None:
    config = tiny_config(position_mode="none")
    model = M.build_model(config, VOCAB_SIZES)
    batch = {k: tf.constant(v) for k, v in make_batch(config, 32, seed=3).items()}
    loss = float(model.compute_loss(batch, training=False))
    z = [t.numpy() for t in model.logits(batch, training=False)[0]]
    present = batch["rating_present"].numpy() == 1
    click = _bce_from_logits(batch["click"].numpy(), z[0]).mean()
    watch = ((z[1] - np.log1p(batch["watch_time"].numpy())) ** 2).mean()
    # presence_loss batch_mean (the default): Σ over rated examples / batch size.
    rating = ((z[2] - batch["rating"].numpy())[present] ** 2).sum() / len(present)
    assert loss == pytest.approx(1.0 * click + 0.5 * watch + 0.5 * rating, rel=1e-5)
    # labelled_mean: the mean over the rated examples only.
    heads = tuple(dataclasses.replace(h, presence_loss="labelled_mean") if h.presence else h
                  for h in config.heads)
    labelled = M.build_model(config.replace(heads=heads), VOCAB_SIZES)
    labelled.logits(batch, training=False)  # builds its variables
    labelled.set_weights(model.get_weights())
    rating_labelled = ((z[2] - batch["rating"].numpy())[present] ** 2).mean()
    assert float(labelled.compute_loss(batch, training=False)) == pytest.approx(
        1.0 * click + 0.5 * watch + 0.5 * rating_labelled, rel=1e-5)

    # Changing the rating of an unrated example changes nothing; of a rated one, the loss.
    absent_row, present_row = int(np.argmin(present)), int(np.argmax(present))
    for row, should_change in ((absent_row, False), (present_row, True)):
        rating_labels = batch["rating"].numpy().copy()
        rating_labels[row] += 3.0
        changed = float(model.compute_loss({**batch, "rating": tf.constant(rating_labels)}, training=False))
        assert (changed != pytest.approx(loss, rel=1e-7)) == should_change


def test_a_batch_without_any_rating_has_a_finite_loss() -> None:
    config = tiny_config(position_mode="none")
    model = M.build_model(config, VOCAB_SIZES)
    batch = make_batch(config, 8)
    batch["rating_present"][:] = 0.0
    batch["rating"][:] = np.nan  # an absent rating may be anything; it must not leak in
    assert math.isfinite(float(model.compute_loss({k: tf.constant(v) for k, v in batch.items()})))


def test_label_priors_are_log_odds_and_training_scale_means_over_labelled_examples() -> None:
    config = tiny_config(position_mode="none")
    batches = [make_batch(config, 64, seed=s) for s in range(3)]
    dataset = tf.data.Dataset.from_tensor_slices(
        {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}).batch(64)
    priors = H.label_priors(config, dataset)
    click = np.concatenate([b["click"] for b in batches])
    watch = np.log1p(np.concatenate([b["watch_time"] for b in batches]))
    present = np.concatenate([b["rating_present"] for b in batches]) == 1
    rating = np.concatenate([b["rating"] for b in batches])[present]
    assert priors["click"] == pytest.approx(math.log(click.mean() / (1 - click.mean())), rel=1e-5)
    assert priors["watch_time"] == pytest.approx(watch.mean(), rel=1e-5)  # the log1p scale it trains on
    assert priors["rating"] == pytest.approx(rating.mean(), rel=1e-5)  # unrated examples left out

    # Only the first training.prior_bias_batches batches are read; 0 reads none.
    first = config.replace(training=dataclasses.replace(config.training, prior_bias_batches=1))
    rate = batches[0]["click"].mean()
    assert H.label_priors(first, dataset)["click"] == pytest.approx(math.log(rate / (1 - rate)), rel=1e-5)
    off = config.replace(training=dataclasses.replace(config.training, prior_bias_batches=0))
    assert H.label_priors(off, dataset) == {}


def test_label_priors_stay_finite_for_a_label_that_is_never_positive_and_skip_unlabelled_heads() -> None:
    config = tiny_config(position_mode="none")
    batch = make_batch(config, 32)
    batch["click"][:] = 0.0
    batch["rating_present"][:] = 0.0
    priors = H.label_priors(config, tf.data.Dataset.from_tensors(batch))
    assert math.isfinite(priors["click"]) and priors["click"] < -9.0
    assert "rating" not in priors


def test_model_towers_start_at_the_given_output_biases() -> None:
    config = tiny_config(position_mode="none")
    model = M.build_model(config, VOCAB_SIZES, {"click": -1.5, "rating": 3.0})
    model(serving_features(make_batch(config, 4), config))
    biases = {t.name: float(t.out.bias.numpy()[0]) for t in model.towers}
    assert biases == {"tower_click": -1.5, "tower_watch_time": 0.0, "tower_rating": 3.0}


def weighted_logistic_config() -> Config:
    """tiny_config with watch_time trained by Covington et al.'s weighted logistic regression."""
    config = tiny_config(position_mode="none")
    heads = [dataclasses.replace(h, regression_loss="weighted_logistic", label_transform="none")
             if h.name == "watch_time" else h for h in config.heads]
    return config.replace(heads=tuple(heads))


def test_weighted_logistic_loss_prior_and_served_expectation() -> None:
    config = weighted_logistic_config()
    model = M.build_model(config, VOCAB_SIZES)
    batch = {k: tf.constant(v) for k, v in make_batch(config, 32, seed=5).items()}
    y = batch["watch_time"].numpy()
    z = [t.numpy() for t in model.logits(batch, training=False)[0]]
    # Each example: a negative of weight 1 and a positive of weight y; normalized by Σ (1 + y).
    softplus = np.logaddexp(0.0, z[1])
    watch = (y * (softplus - z[1]) + softplus).sum() / (1.0 + y).sum()
    click = _bce_from_logits(batch["click"].numpy(), z[0]).mean()
    present = batch["rating_present"].numpy() == 1
    rating = ((z[2] - batch["rating"].numpy())[present] ** 2).sum() / len(present)
    loss = float(model.compute_loss(batch, training=False))
    assert loss == pytest.approx(click + 0.5 * watch + 0.5 * rating, rel=1e-5)
    # Served in label units: exp(logit), the odds, which the loss's optimum makes E[y].
    served = model(serving_features(make_batch(config, 32, seed=5), config))["watch_time"].numpy()
    np.testing.assert_allclose(served, np.exp(z[1]), rtol=1e-5)
    # The prior bias is log E[y], and there the loss's gradient in a constant logit is 0.
    prior = H.label_priors(config, tf.data.Dataset.from_tensors(batch))["watch_time"]
    assert prior == pytest.approx(math.log(y.mean()), rel=1e-5)
    task = H.ranking_task(config.heads[1])
    label, weight = H.labelled(config.heads[1], batch)
    logit = tf.Variable(prior)
    with tf.GradientTape() as tape:
        value = task(labels=label[:, None], predictions=tf.fill([32, 1], logit),
                     sample_weight=weight[:, None])
    assert abs(float(tape.gradient(value, logit))) < 1e-3 * float(tf.reduce_sum(weight))


def test_weighted_logistic_head_learns_the_expected_label() -> None:
    """A few hundred steps on a constant-feature problem: exp(logit) → the label's mean, in its units."""
    config = weighted_logistic_config()
    model = M.build_model(config, VOCAB_SIZES)
    batch = make_batch(config, 256, seed=2)
    rng = np.random.default_rng(0)
    # Zero-inflated seconds: 0 on 80% of the examples, else exponential with mean 120 s → E = 24 s.
    batch["watch_time"] = np.where(rng.random(256) < 0.2, rng.exponential(120.0, 256), 0.0).astype(np.float32)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.05))
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=300, epochs=1, verbose=0)
    served = model(serving_features(batch, config))["watch_time"].numpy()
    # The model can fit per-row values, so compare means: Σ exp(z) ≈ Σ y at the optimum.
    assert served.mean() == pytest.approx(batch["watch_time"].mean(), rel=0.15)


def test_compute_loss_names_a_missing_label() -> None:
    config = tiny_config()
    model = M.build_model(config, VOCAB_SIZES)
    batch = make_batch(config, 4)
    del batch["rating_present"]
    with pytest.raises(KeyError, match="rating_present"):
        model.compute_loss({k: tf.constant(v) for k, v in batch.items()})


# ---------------------------------------------------------------------------
# Training and export


def _fit(model: M.WatchNextModel, config: Config, eagerly: bool) -> list[float]:
    data = tf.data.Dataset.from_tensor_slices(make_batch(config, 64, seed=1)).batch(64)
    model.compile(optimizer=tf_keras.optimizers.Adagrad(learning_rate=0.1), run_eagerly=eagerly)
    return model.fit(data, epochs=3, verbose=0).history["loss"]


def _serving_function(model: M.WatchNextModel, features: dict[str, tf.Tensor]
                      ) -> tf.types.experimental.Function:
    spec = {k: tf.TensorSpec([None, *v.shape[1:]], v.dtype, name=k) for k, v in features.items()}

    @tf.function(input_signature=[spec], autograph=False)
    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return model(inputs, training=False)

    return serve


def _assert_reloaded_outputs_match(model: M.WatchNextModel, saved: object, path: str,
                                   features: dict[str, tf.Tensor]) -> None:
    tf.saved_model.save(saved, path, signatures={"serving_default": _serving_function(model, features)})
    reloaded = tf.saved_model.load(path)
    got = reloaded.signatures["serving_default"](**features)
    want = model(features, training=False)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-5, atol=1e-7)


# Fast subset: every other architecture once, every position mode at least once; mmoe ×
# shallow_tower, the default, runs in graph mode with the Keras-model export further down.
FAST_CASES = {("omoe", "input_feature"), ("shared_bottom", "none"), ("cgc", "shallow_tower"),
              ("ple", "input_feature"), ("single_task", "none")}
MATRIX = [
    pytest.param(a, p, marks=() if (a, p) in FAST_CASES else pytest.mark.slow)
    for a in ARCHITECTURES for p in POSITION_MODES
]


@pytest.mark.parametrize(("architecture", "position_mode"), MATRIX)
def test_every_architecture_and_position_mode_trains_and_exports(architecture: str, position_mode: str,
                                                                 tmp_path: object) -> None:
    config = tiny_config(architecture, position_mode)
    model = M.build_model(config, VOCAB_SIZES)
    losses = _fit(model, config, eagerly=True)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    # Export the variables and a serving function (no position, graph mode); the Keras
    # model object itself is exported by the test below.
    features = serving_features(make_batch(config, 8, seed=2), config)
    module = tf.Module()
    module.model_variables = list(model.variables)
    _assert_reloaded_outputs_match(model, module, str(tmp_path / "model"), features)


@pytest.mark.parametrize("architecture", [
    pytest.param(a, marks=() if a == "mmoe" else pytest.mark.slow) for a in ARCHITECTURES])
def test_keras_model_trains_in_graph_mode_and_saves_with_a_signature_without_position(
        architecture: str, tmp_path: object) -> None:
    config = tiny_config(architecture)
    model = M.build_model(config, VOCAB_SIZES)
    losses = _fit(model, config, eagerly=False)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    features = serving_features(make_batch(config, 8, seed=2), config)
    _assert_reloaded_outputs_match(model, model, str(tmp_path / "model"), features)


def test_model_config_round_trips() -> None:
    config = tiny_config("ple", "input_feature")
    model = M.build_model(config, VOCAB_SIZES)
    again = M.WatchNextModel.from_config(model.get_config())
    assert again.config == config and again.vocab_sizes == VOCAB_SIZES


# ---------------------------------------------------------------------------
# Cost


def test_multiplications_per_example_matches_a_hand_count() -> None:
    # Encoder: user 4 + candidate 4 + history 4 + device 2 + 1 numeric = 15 → shared hidden 8.
    encoder_to_hidden = 15 * 8
    towers = 3 * (4 * 4 + 4 * 1)  # per head: hidden [4] then one output
    mmoe = (2 * (8 * 4)  # two experts [4]
            + 3 * (8 * 2)  # one gate per head over 2 experts
            + 3 * (2 * 4))  # each head's mixture Σ_i g_i · expert_i
    assert M.multiplications_per_example(tiny_config("mmoe"), VOCAB_SIZES) == (
        encoder_to_hidden + mmoe + towers)
    # The position embedding (2) widens the encoder output; the shallow tower costs nothing at serving.
    assert M.multiplications_per_example(tiny_config("mmoe", "input_feature"), VOCAB_SIZES) == (
        17 * 8 + mmoe + towers)
    assert M.multiplications_per_example(tiny_config("shared_bottom"), VOCAB_SIZES) == (
        encoder_to_hidden + 8 * 4 + towers)
    # PLE, 2 levels, 1 expert per head + 2 shared, experts [4]:
    level_1 = (5 * (8 * 4)  # 3 task experts + 2 shared, reading the shared hidden layer
               + 3 * (8 * 3 + 3 * 4)  # each head's gate over own + shared, and its mixture
               + (8 * 5 + 5 * 4))  # the shared gate over all 5 experts, and its mixture
    level_2 = 5 * (4 * 4) + 3 * (4 * 3 + 3 * 4)  # top level: no shared gate
    assert M.multiplications_per_example(tiny_config("ple"), VOCAB_SIZES) == (
        encoder_to_hidden + level_1 + level_2 + towers)


def test_a_table_model_without_position_or_device_trains_and_serves(tmp_path: object) -> None:
    """data.source table: no shallow tower, no device; features and labels only."""
    config = from_dict({
        "data": {"source": "table"},
        "features": {"ids": [{"name": USER, "vocabulary": "user", "embedding_dim": 4, "oov_buckets": 1}],
                     "numeric": [DURATION], "log1p_numeric": [], "position": "", "device": "",
                     "request_id": ""},
        "heads": [{"name": "click", "type": "binary", "label": "click"},
                  {"name": "like", "type": "binary", "label": "like"}],
        "model": {"position_mode": "none", "shared_hidden_units": 8, "num_experts": 2, "expert_units": [4],
                  "tower_units": [4]},
    })
    rng = np.random.default_rng(3)
    users = rng.integers(0, VOCAB_SIZES["user"] + 1, 64).astype(np.int64)
    duration = rng.normal(size=64).astype(np.float32)
    batch = {USER: users, DURATION: duration, "click": (users % 2 == 0).astype(np.float32),
             "like": (duration > 0).astype(np.float32)}
    model = M.build_model(config, VOCAB_SIZES)
    assert model.shallow_tower is None
    model.compile(optimizer=tf_keras.optimizers.Adagrad(learning_rate=0.1), run_eagerly=True)
    data = tf.data.Dataset.from_tensor_slices(batch).batch(64)
    losses = model.fit(data, epochs=3, verbose=0).history["loss"]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    features = {USER: tf.constant(users[:8]), DURATION: tf.constant(duration[:8])}
    assert set(model(features)) == {"click", "like", M.SCORE_KEY}
    _assert_reloaded_outputs_match(model, model, str(tmp_path / "model"), features)


class _Logs(tf_keras.callbacks.Callback):
    """The keys of every training step's logs, and of every epoch's (validation included)."""

    def __init__(self) -> None:
        super().__init__()
        self.step_keys: set[str] = set()
        self.epoch_logs: list[dict[str, float]] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step_keys |= set(logs or {})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_logs.append(dict(logs or {}))


def test_training_steps_log_head_losses_but_no_auc_which_validation_still_computes() -> None:
    config = tiny_config()
    model = M.build_model(config, VOCAB_SIZES)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.01))
    data = tf.data.Dataset.from_tensor_slices(make_batch(config, 64, seed=1)).batch(16)
    logs = _Logs()
    model.fit(data, validation_data=data, epochs=2, verbose=0, callbacks=[logs])
    assert logs.step_keys == {"loss", "regularization_loss", "total_loss",
                              "click_loss", "watch_time_loss", "rating_loss"}
    last = logs.epoch_logs[-1]
    assert not any("auc" in k or "rmse" in k for k in last if not k.startswith("val_"))
    # The AUC is still there at evaluation, and it is the AUC of the eval predictions.
    assert {"val_click_auc", "val_watch_time_rmse", "val_rating_rmse"} <= set(last)
    batch = make_batch(config, 64, seed=1)
    predicted = model({k: tf.constant(v) for k, v in batch.items()}, training=False)["click"].numpy()
    auc = tf_keras.metrics.AUC()
    auc.update_state(batch["click"], predicted)
    assert last["val_click_auc"] == pytest.approx(float(auc.result()), abs=1e-3)


def test_dense_embedding_gradients_give_adam_the_same_update_as_sparse_ones() -> None:
    """tf_keras' Adam decays every row's moments whatever the gradient, so a table's sparse gradient
    (duplicate ids included) and the same gradient made dense update the table alike; under a
    distribution strategy, or with another optimizer, the gradients are left as they are."""
    start = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    ids = tf.constant([1, 4, 1, 0])
    tables = []
    for dense in (False, True):
        table = tf.Variable(start)
        optimizer = tf_keras.optimizers.Adam(learning_rate=0.1)
        for step in range(3):  # m and v carry over: rows untouched at a step still move
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(table, ids[step:]) ** 2)
            (grad,) = tape.gradient(loss, [table])
            assert isinstance(grad, tf.IndexedSlices)
            if dense:
                (grad,) = M.dense_embedding_gradients([grad], optimizer, replicas=1)
                assert isinstance(grad, tf.Tensor)
            optimizer.apply_gradients([(grad, table)])
        tables.append(table.numpy())
    np.testing.assert_allclose(tables[1], tables[0], rtol=1e-6, atol=1e-7)
    moved = ~np.isclose(tables[0], start).all(axis=1)
    assert moved.tolist() == [True, True, False, False, True, False]  # the ids seen; row 4 not at step 2
    sparse = tf.IndexedSlices(tf.ones([2, 3]), tf.constant([0, 1]), tf.constant([6, 3]))
    adam, sgd = tf_keras.optimizers.Adam(), tf_keras.optimizers.SGD()
    assert M.dense_embedding_gradients([sparse], adam, replicas=2)[0] is sparse
    assert M.dense_embedding_gradients([sparse], sgd, replicas=1)[0] is sparse
