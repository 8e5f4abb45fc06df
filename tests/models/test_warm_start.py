"""Warm start: weights carried over by name, embedding rows carried over by id."""

from __future__ import annotations

import dataclasses
import importlib.util
import os

from watchnext.models.model import build_model
from watchnext.models.warm_start import remap_rows, warm_start

import numpy as np
import tensorflow as tf

_spec = importlib.util.spec_from_file_location("model_fixtures", os.path.join(os.path.dirname(__file__),
                                                                              "test_model.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

OLD_VIDEOS = [b"v%d" % i for i in range(10)]
# The new window: v3 and v9 dropped out, w1 and w2 are new, the rest moved.
NEW_VIDEOS = [b"v5", b"w1", b"v0", b"v1", b"v2", b"w2", b"v4", b"v6", b"v7", b"v8"]


def test_remap_rows_moves_shared_ids_and_keeps_new_ones():
    old = np.arange(12, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # 10 tokens + 2 OOV
    new = -np.ones((12, 3), np.float32)
    table, kept = remap_rows(old, OLD_VIDEOS, new, NEW_VIDEOS, oov_buckets=2)
    assert kept == 8
    assert table[0].tolist() == [5.0] * 3  # v5 was row 5
    assert table[1].tolist() == [-1.0] * 3  # w1 is new: keeps its initialization
    assert table[5].tolist() == [-1.0] * 3
    assert table[10:].tolist() == [[10.0] * 3, [11.0] * 3]  # OOV buckets copied


def _key(name: str) -> str:
    """Variable names without the model's scope (present when created by an eager call)."""
    return name.split("/", 1)[1] if name.startswith("watchnext/") else name


def _built(config, seed: int):
    tf.random.set_seed(seed)
    model = build_model(config, fixtures.VOCAB_SIZES)
    model(fixtures.make_batch(config, 4, labels=False), training=False)
    return model


def test_warm_start_copies_dense_weights_and_remaps_embeddings(tmp_path):
    config = fixtures.tiny_config()
    base = _built(config, seed=1)
    base_dir = str(tmp_path / "base")
    tf.saved_model.save(base, base_dir)
    os.makedirs(os.path.join(base_dir, "assets"), exist_ok=True)
    vocabs_old = {"video": OLD_VIDEOS, "user": [b"u%d" % i for i in range(6)], "device": [b"d0", b"d1"]}
    for name, tokens in vocabs_old.items():
        with open(os.path.join(base_dir, "assets", name), "wb") as f:
            f.write(b"\n".join(tokens) + b"\n")

    fresh = _built(config, seed=2)
    before = {_key(v.name): v.numpy() for v in fresh.trainable_variables}
    vocabs_new = {"video": NEW_VIDEOS, "user": vocabs_old["user"], "device": vocabs_old["device"]}
    report = warm_start(fresh, base_dir, vocabs_new, config)

    old = {_key(v.name): v.numpy() for v in base.trainable_variables}
    new = {_key(v.name): v.numpy() for v in fresh.trainable_variables}
    video = "feature_encoder/video_embedding/embeddings:0"
    assert report.remapped[video] == (8, 11)
    np.testing.assert_array_equal(new[video][0], old[video][5])  # v5 moved from row 5 to row 0
    np.testing.assert_array_equal(new[video][1], before[video][1])  # w1: new id, fresh row
    np.testing.assert_array_equal(new[video][10], old[video][10])  # the OOV bucket
    assert "shared_hidden/kernel:0" in report.copied
    np.testing.assert_array_equal(new["shared_hidden/kernel:0"], old["shared_hidden/kernel:0"])
    # Same device vocabulary: the shallow tower's device-indexed tables carry over too.
    assert not [n for n in report.skipped if n.startswith("shallow_tower/")]


def test_shallow_tower_tables_restart_when_the_device_vocabulary_changes(tmp_path):
    config = fixtures.tiny_config()
    base = _built(config, seed=1)
    base_dir = str(tmp_path / "base")
    tf.saved_model.save(base, base_dir)
    os.makedirs(os.path.join(base_dir, "assets"), exist_ok=True)
    for name, tokens in {"video": OLD_VIDEOS, "user": [b"u"], "device": [b"d0", b"d1"]}.items():
        with open(os.path.join(base_dir, "assets", name), "wb") as f:
            f.write(b"\n".join(tokens) + b"\n")
    fresh = _built(config, seed=2)
    report = warm_start(fresh, base_dir, {"video": OLD_VIDEOS, "user": [b"u"], "device": [b"d1", b"d0"]},
                        config)
    skipped = [n for n in report.skipped if n.startswith("shallow_tower/")]
    assert any("device_embedding" in n for n in skipped)


def test_a_base_model_with_per_expert_variables_warm_starts_the_fused_experts(tmp_path):
    """Models saved before the experts were fused name one MLP per expert: their weights are stacked."""
    config = fixtures.tiny_config()  # mmoe, 2 experts of [4]
    template = _built(config, seed=1)
    old_vars, fused = [], {}
    for v in template.variables:
        name = _key(v.name)
        if "/experts/" not in name:
            old_vars.append(v)
            continue
        fused[name] = v.numpy()
        scope, leaf = name.split("/experts/")
        kind, layer = leaf[:-2].split("_")
        for e in range(v.shape[0]):  # mmoe/expert_<e>/dense_<layer>/<kind>
            old_name = f"watchnext/{scope}/expert_{e}/dense_{layer}/{kind}"
            old_vars.append(tf.Variable(v.numpy()[e], name=old_name))
    assert set(fused) == {"mmoe/experts/kernel_0:0", "mmoe/experts/bias_0:0"}
    base = tf.__internal__.tracking.AutoTrackable()
    base.variables = old_vars
    base_dir = str(tmp_path / "base")
    tf.saved_model.save(base, base_dir)

    fresh = _built(config, seed=2)
    vocabs = {"video": OLD_VIDEOS, "user": [b"u"], "device": [b"d0", b"d1"]}
    report = warm_start(fresh, base_dir, vocabs, config)
    assert sorted(report.stacked) == sorted(fused)
    new = {_key(v.name): v.numpy() for v in fresh.variables}
    for name, value in fused.items():
        np.testing.assert_array_equal(new[name], value)
    assert not [n for n in report.skipped if "expert" in n]


def test_more_experts_of_the_same_width_keep_the_base_models_experts(tmp_path):
    config = fixtures.tiny_config()  # 2 experts of [4]
    base = _built(config, seed=1)
    base_dir = str(tmp_path / "base")
    tf.saved_model.save(base, base_dir)
    more = config.replace(model=dataclasses.replace(config.model, num_experts=3))
    fresh = _built(more, seed=2)
    before = {_key(v.name): v.numpy() for v in fresh.variables}
    vocabularies = {"video": OLD_VIDEOS, "user": [b"u"], "device": [b"d0", b"d1"]}
    report = warm_start(fresh, base_dir, vocabularies, more)
    old = {_key(v.name): v.numpy() for v in base.variables}
    new = {_key(v.name): v.numpy() for v in fresh.variables}
    for name in ("mmoe/experts/kernel_0:0", "mmoe/experts/bias_0:0"):
        assert report.remapped[name] == (2, 3)
        np.testing.assert_array_equal(new[name][:2], old[name])
        np.testing.assert_array_equal(new[name][2], before[name][2])  # the new expert keeps its init
