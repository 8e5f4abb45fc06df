"""Tests of models/tuner.py: hyperparameters → Config, the search, and the Trainer honouring its result.

The mapping, objective and warm start across sizes run on tiny in-memory
models. The search and run_fn run on a small simulated day featurized by the real
preprocessing_fn (pipeline/datasets.py), and one test continues the shared end-to-end
pipeline run (tests/conftest.py) with `tuning.enabled: true`; those are marked slow.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import json
import logging
import math
import os
import shutil

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import ARCHITECTURES, TUNED_HYPERPARAMETERS, Config, ConfigError, from_dict
from watchnext.core.contract import CONFIG_KEY, EXAMPLES_INPUT
from watchnext.models import tuner as T
from watchnext.models.export import GATES_SIGNATURE
from watchnext.models.model import build_model, multiplications_per_example
from watchnext.models.warm_start import warm_start

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

_spec = importlib.util.spec_from_file_location("model_fixtures", os.path.join(os.path.dirname(__file__),
                                                                              "test_model.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

HYPERPARAMETERS = {"num_experts": 3, "expert_width": 6, "learning_rate": 0.01, "gate_dropout": 0.2}


# ---------------------------------------------------------------------------
# Hyperparameters → Config.


def test_apply_hyperparameters_sets_each_value_on_a_copy():
    config = fixtures.tiny_config(expert_units=[4, 4])
    tuned = T.apply_hyperparameters(config, HYPERPARAMETERS)
    assert tuned.model.num_experts == 3
    assert tuned.model.expert_units == (6, 6)  # the width of every expert layer; the depth stays
    assert tuned.model.gate_dropout == 0.2
    assert tuned.training.learning_rate == 0.01
    assert (config.model.num_experts, config.model.expert_units) == (2, (4, 4))  # the original is untouched
    assert dataclasses.replace(tuned, model=config.model, training=config.training) == config
    # Only what is given changes.
    partial = T.apply_hyperparameters(config, {"learning_rate": 0.05})
    assert partial.model == config.model and partial.training.learning_rate == 0.05


def test_the_trainer_and_the_tuner_forms_of_hyperparameters_map_alike():
    config = fixtures.tiny_config()
    hp = keras_tuner.HyperParameters()
    for name, value in HYPERPARAMETERS.items():
        hp.Fixed(name, value)
    as_tfx_passes_it = json.loads(json.dumps(hp.get_config()))  # best_hyperparameters.txt, read back
    assert (T.apply_hyperparameters(config, hp) == T.apply_hyperparameters(config, as_tfx_passes_it)
            == T.apply_hyperparameters(config, HYPERPARAMETERS))


def test_bad_hyperparameters_are_named():
    config = fixtures.tiny_config()
    with pytest.raises(ValueError, match="'num_expert'"):
        T.apply_hyperparameters(config, {"num_expert": 3})
    with pytest.raises(ConfigError, match=r"model\.gate_dropout"):
        T.apply_hyperparameters(config, {"gate_dropout": 1.5})


def test_search_space_is_the_configured_lists():
    config = from_dict({"tuning": {"num_experts": [3, 5], "learning_rate": [0.002]}})
    space = {hp.name: list(hp.values) for hp in T.search_space(config).space}
    assert space == {"num_experts": [3, 5], "expert_width": [16, 32, 64], "learning_rate": [0.002],
                     "gate_dropout": [0.0, 0.1, 0.2]}
    assert set(space) == set(TUNED_HYPERPARAMETERS)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_num_experts_is_searched_exactly_where_it_changes_the_model(architecture):
    config = fixtures.tiny_config(architecture=architecture)
    cost = {n: multiplications_per_example(T.apply_hyperparameters(config, {"num_experts": n}),
                                           fixtures.VOCAB_SIZES) for n in (2, 3)}
    searched = T.searched_hyperparameters(config)
    assert ("num_experts" in searched) == (cost[2] != cost[3]), (architecture, cost)
    assert ("gate_dropout" in searched) == ("num_experts" in searched)
    assert {"expert_width", "learning_rate"} <= set(searched)


def test_objective_values_from_eval_logs():
    config = Config()
    logs = {f"val_{h.name}_auc": 0.6 for h in config.heads if h.type == "binary"}
    logs["val_click_auc"] = 0.9
    logs.update({f"val_{h.name}_loss": 2.0 for h in config.heads})
    logs["val_loss"] = 100.0  # the last eval batch only: never the objective
    assert T.objective(config).name == "val_mean_auc" and T.objective(config).direction == "max"
    assert T.objective_value(config, logs) == pytest.approx((0.9 + 0.6 + 0.6) / 3)
    weighted = config.replace(tuning=dataclasses.replace(config.tuning, objective="weighted_loss"))
    assert T.objective(weighted).direction == "min"
    assert T.objective_value(weighted, logs) == pytest.approx(2.0 * sum(h.loss_weight for h in config.heads))
    with pytest.raises(KeyError, match="val_like_auc"):
        T.objective_value(config, {k: v for k, v in logs.items() if k != "val_like_auc"})


# ---------------------------------------------------------------------------
# Warm start from a base model of other sizes (the Tuner picked new ones).


def test_warm_start_from_a_base_with_other_experts_and_width_skips_what_no_longer_fits(tmp_path, caplog):
    config = fixtures.tiny_config()  # 2 experts of width 4
    tf.random.set_seed(1)
    base = build_model(config, fixtures.VOCAB_SIZES)
    base(fixtures.make_batch(config, 4, labels=False), training=False)
    base_dir = str(tmp_path / "base")
    tf.saved_model.save(base, base_dir)
    os.makedirs(os.path.join(base_dir, "assets"), exist_ok=True)
    vocabularies = {"video": [b"v%d" % i for i in range(10)], "user": [b"u%d" % i for i in range(6)],
                    "device": [b"d0", b"d1"]}
    for name, tokens in vocabularies.items():
        with open(os.path.join(base_dir, "assets", name), "wb") as f:
            f.write(b"\n".join(tokens) + b"\n")

    tuned = T.apply_hyperparameters(config, {"num_experts": 3, "expert_width": 6})
    fresh = build_model(tuned, fixtures.VOCAB_SIZES)
    fresh(fixtures.make_batch(tuned, 4, labels=False), training=False)
    with caplog.at_level(logging.INFO, logger="watchnext.models.warm_start"):
        report = warm_start(fresh, base_dir, vocabularies, tuned)

    # The experts are one fused [experts, in, out] kernel per layer: more and wider experts do not fit.
    assert report.skipped["mmoe/experts/kernel_0:0"] == "shape changed (2, 8, 4) → (3, 8, 6)"
    assert report.skipped["mmoe/experts/bias_0:0"] == "shape changed (2, 4) → (3, 6)"
    assert report.skipped["mmoe/gate_click/logits/kernel:0"] == "shape changed (8, 2) → (8, 3)"
    assert report.skipped["tower_click/hidden/dense_0/kernel:0"] == "shape changed (4, 4) → (6, 4)"
    # What still fits carries over: the shared layer, the embeddings, the shallow tower.
    assert "shared_hidden/kernel:0" in report.copied
    assert report.remapped["feature_encoder/video_embedding/embeddings:0"] == (10, 11)
    assert any(n.startswith("shallow_tower/") for n in report.copied)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "shape changed (8, 2) → (8, 3)" in logged and "shape changed (2, 8, 4) → (3, 8, 6)" in logged


# ---------------------------------------------------------------------------
# The search and the Trainer on featurized simulated data.

SEARCH = {"max_trials": 2, "num_experts": [3, 4], "expert_width": [4, 8], "learning_rate": [0.003, 0.01],
          "gate_dropout": [0.0, 0.2]}
SMALL = {"model": {"shared_hidden_units": 16, "num_experts": 2, "expert_units": [8], "tower_units": [4]},
         "training": {"batch_size": 64}, "tuning": {"enabled": True, **SEARCH}}


@pytest.fixture(scope="module")
def featurized(tmp_path_factory):
    from watchnext.pipeline import datasets

    config = from_dict(SMALL)
    return config, datasets.featurized_simulation(str(tmp_path_factory.mktemp("tuning")), 3000, 3, config)


def _fn_args(data, work_dir: str, config: Config, train_steps: int, eval_steps: int, **more):
    """FnArgs as TFX's Tuner and Trainer build them, over the featurized train shards.

    The featurized simulation keeps only the train split transformed, so both splits
    read it: these tests check the mechanics, not generalization.
    """
    from tfx import v1 as tfx
    from tfx.components.trainer.fn_args_utils import DataAccessor
    from tfx.components.util import examples_utils, tfxio_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    uri = os.path.join(work_dir, "transformed_examples")
    for split in ("train", "eval"):
        os.makedirs(os.path.join(uri, f"Split-{split}"), exist_ok=True)
        for i, path in enumerate(data.train_files):
            link = os.path.join(uri, f"Split-{split}", f"part-{i:05d}.gz")  # tfx_bsl reads .gz as GZIP
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(path), link)
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    accessor = DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], ["Tuner"]),
        record_batch_factory=None, data_view_decode_fn=None)

    def files(split: str) -> list[str]:
        return [io_utils.all_files_pattern(u) for u in artifact_utils.get_split_uris([examples], split)]

    return tfx.components.FnArgs(
        working_dir=os.path.join(work_dir, "working"), train_files=files("train"), eval_files=files("eval"),
        train_steps=train_steps, eval_steps=eval_steps, transform_graph_path=data.transform_dir,
        transform_output=data.transform_dir, data_accessor=accessor,
        custom_config={CONFIG_KEY: config.to_json()}, **more)


@pytest.mark.slow
def test_tuner_fn_runs_two_trials_and_returns_values_from_the_space(featurized, tmp_path):
    config, data = featurized
    result = T.tuner_fn(_fn_args(data, str(tmp_path), config, train_steps=15, eval_steps=3))
    assert isinstance(result.tuner, keras_tuner.RandomSearch)
    result.tuner.search(**result.fit_kwargs)  # what TFX's Tuner executor does with the result

    trials = list(result.tuner.oracle.trials.values())
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" and math.isfinite(t.score) for t in trials), trials
    assert all(0.0 <= t.score <= 1.0 for t in trials)  # a mean AUC
    best = result.tuner.get_best_hyperparameters()[0].values
    assert set(best) == set(TUNED_HYPERPARAMETERS)
    for name, value in best.items():
        assert value in SEARCH[name], (name, value)
    assert max(t.score for t in trials) == result.tuner.oracle.get_best_trials(1)[0].score


@pytest.mark.slow
def test_run_fn_trains_and_exports_the_tuned_model(featurized, tmp_path, caplog):
    from watchnext.models.trainer import run_fn

    config, data = featurized
    hp = keras_tuner.HyperParameters()
    for name, value in (HYPERPARAMETERS | {"expert_width": 4}).items():
        hp.Fixed(name, value)
    serving = str(tmp_path / "serving")
    fn_args = _fn_args(data, str(tmp_path), config, train_steps=10, eval_steps=2,
                       serving_model_dir=serving, model_run_dir=str(tmp_path / "run"),
                       hyperparameters=json.loads(json.dumps(hp.get_config())))
    with caplog.at_level(logging.INFO, logger="watchnext.models.trainer"):
        run_fn(fn_args)

    assert "hyperparameters (from the Tuner)" in caplog.text and "'num_experts': 3" in caplog.text
    gates = tf.saved_model.load(serving).signatures[GATES_SIGNATURE](
        **{EXAMPLES_INPUT: tf.constant(data.eval_raw[:5])})
    assert {k: tuple(v.shape) for k, v in gates.items()} == {h: (5, 3) for h in config.head_names}
    np.testing.assert_allclose(gates["click"].numpy().sum(axis=1), 1.0, rtol=1e-5)


# ---------------------------------------------------------------------------
# Through the pipeline.


@pytest.mark.slow
def test_pipeline_with_tuning_trains_the_model_on_the_best_hyperparameters(pipeline_runs, tmp_path, caplog,
                                                                          capsys):
    """Continues the shared tiny run (upstream of the Tuner is cached) with tuning on and warm start
    from its blessed model of 2 experts of width 8: the tuned sizes differ, so warm start must skip."""
    from watchnext.pipeline.local_runner import RunPaths, run_local

    config, first, _ = pipeline_runs
    assert first.pushed_path, first.message
    logs = RunPaths(config.pipeline.output_dir).simulated_logs
    out = str(tmp_path / "tuned")
    shutil.copytree(config.pipeline.output_dir, out)
    config = config.replace(
        pipeline=dataclasses.replace(config.pipeline, output_dir=out),
        training=dataclasses.replace(config.training, warm_start=True, train_steps=20),
        tuning=dataclasses.replace(config.tuning, enabled=True, max_trials=2, train_steps=10, eval_steps=2,
                                   num_experts=(3, 4), expert_width=(4, 12), learning_rate=(0.003,),
                                   gate_dropout=(0.1,)))
    with caplog.at_level(logging.INFO, logger="watchnext"):
        result = run_local(config, logs)
    with capsys.disabled():
        print(f"\ntuned pipeline run: {result.seconds:.0f} s; components (s): {result.component_seconds}")
    assert "Tuner" in result.component_seconds, result.component_seconds

    (best_file,) = glob.glob(os.path.join(out, "tfx", "Tuner", "best_hyperparameters", "*",
                                          "best_hyperparameters.txt"))
    with open(best_file, encoding="utf-8") as f:
        best = json.load(f)["values"]
    assert best["num_experts"] in (3, 4) and best["expert_width"] in (4, 12), best
    models = sorted(glob.glob(os.path.join(out, "tfx", "Trainer", "model", "*", "Format-Serving")),
                    key=lambda p: int(p.split(os.sep)[-2]))
    eval_examples = sorted(glob.glob(os.path.join(out, "tfx", "**", "Split-eval", "*.gz"), recursive=True))
    raw = [r.numpy() for r in tf.data.TFRecordDataset(eval_examples[:1], compression_type="GZIP").take(4)]
    gates = tf.saved_model.load(models[-1]).signatures[GATES_SIGNATURE](**{EXAMPLES_INPUT: tf.constant(raw)})
    assert gates["click"].shape == (4, best["num_experts"])
    assert "shape changed" in caplog.text, "the warm start from the 2-expert model should skip mismatches"
