"""The Evaluator: numpy metrics and blessing on in-code arrays, and the executor on tiny SavedModels."""

from __future__ import annotations

import dataclasses
import json
import math
import os

from watchnext.components.evaluator import component, metrics
from watchnext.components.evaluator.metrics import Scored
from watchnext.core.config import DEFAULT_HEADS, Config, EvaluatorView

import numpy as np
import pytest

# The default heads without the production AUC floors (a few rows need not clear them).
CONFIG = Config().replace(heads=tuple(dataclasses.replace(h, value_threshold=0.0) for h in DEFAULT_HEADS))
DEVICES = np.array(["mobile", "desktop", "tv"])


def _rows(n: int = 3000, seed: int = 0, slate: int = 10) -> dict[str, np.ndarray]:
    """Raw columns of `n` eval rows in slates of `slate`: labels driven by a `signal` column."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    p = 1 / (1 + np.exp(-2 * signal))
    click = (rng.random(n) < p).astype(np.int64)
    rated = (rng.random(n) < 0.3).astype(np.int64)
    return {
        "signal": signal.astype(np.float32), "noise": rng.normal(size=n).astype(np.float32),
        "click": click, "like": (rng.random(n) < p / 2).astype(np.int64),
        "dismiss": (rng.random(n) < (1 - p) / 3).astype(np.int64),
        "watch_time": (click * 30 * p + rng.normal(0, 1, n)).astype(np.float32),
        "rating": (rated * (1 + 4 * p)).astype(np.float32), "rating_present": rated,
        "request_id": np.array([f"r{i // slate}" for i in range(n)], dtype=object),
        "position": np.arange(n) % slate,
        "device": np.repeat(DEVICES[rng.integers(0, 3, n // slate + 1)], slate)[:n],
    }


def _predict(x: np.ndarray) -> dict[str, np.ndarray]:
    """What the fake models serve for input column x (the signal: a good model; noise: a bad one)."""
    p = 1 / (1 + np.exp(-2 * x))
    return {"click": p, "like": p / 2, "dismiss": (1 - p) / 3, "watch_time": 30 * p * p,
            "rating": 1 + 4 * p, "score": p}


def _scored(rows: dict[str, np.ndarray], candidate: str, baseline: str | None) -> Scored:
    columns = {k: v for k, v in rows.items() if k not in ("signal", "noise")}
    columns["request"] = component._request_codes(rows["request_id"])
    return Scored(columns, _predict(rows[candidate]), _predict(rows[baseline]) if baseline else None)


def test_slices_bucket_positions_and_skip_empty_ones():
    rows = _rows(100, slate=4)  # positions 0-3: no 5-9 or 10+ bucket
    names = [name for name, _ in metrics.slices(CONFIG, rows, 100)]
    assert names[0] == "overall"
    assert {n for n in names if n.startswith("position=")} == {"position=0", "position=1", "position=2-4"}
    assert metrics.position_bucket_names((0, 1, 2, 5, 10)) == ["0", "1", "2-4", "5-9", "10+"]


def test_ndcg_per_request_by_hand():
    request = np.array([0, 0, 0, 1, 1, 2, 2])
    score = np.array([0.9, 0.5, 0.1, 0.2, 0.8, 0.3, 0.4])
    gain = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # request 2 has no gain: left out
    codes, ndcg = metrics.ndcg_per_request(request, score, gain, k=2)
    assert codes.tolist() == [0, 1]
    # Request 0: ranked gains [0, 1, 1], top 2: DCG 1/log2(3), ideal 1 + 1/log2(3).
    # Request 1: ranked gains [0, 1]: DCG 1/log2(3), ideal 1.
    d = 1 / math.log2(3)
    np.testing.assert_allclose(ndcg, [d / (1 + d), d])


def test_ndcg_leaves_out_one_candidate_requests_in_mixed_data():
    # Request 0: a slate of 2, badly ranked (gain on the lower score): NDCG 1/log2(3).
    # Requests 1 and 2: one candidate each, with gain: NDCG 1 by construction.
    # The old mean over all three was (d + 2) / 3; over the slate alone it is d.
    request = np.array([0, 0, 1, 2])
    score = np.array([0.9, 0.1, 0.5, 0.5])
    gain = np.array([0.0, 1.0, 1.0, 1.0])
    codes, ndcg = metrics.ndcg_per_request(request, score, gain, k=10)
    d = 1 / math.log2(3)
    assert codes.tolist() == [0]
    np.testing.assert_allclose(ndcg, [d])
    assert metrics.ranking_requests(request) == {"requests": 3, "ranked": 1, "single_candidate": 2}


def test_mixed_data_rank_only_slates_and_say_so():
    rows = _rows(300, slate=10)
    singles = _rows(40, seed=1, slate=1)
    singles["request_id"] = np.array([f"single{i}" for i in range(40)], dtype=object)
    mixed = {k: np.concatenate([rows[k], singles[k]]) for k in rows}
    result = metrics.evaluate(CONFIG, _scored(mixed, "signal", "noise"))
    slates_only = metrics.evaluate(CONFIG, _scored(rows, "signal", "noise"))
    assert result["ranking"] == slates_only["ranking"]  # the 40 single items change nothing
    assert result["ranking_requests"] == {"requests": 70, "ranked": 30, "single_candidate": 40}
    assert result["notes"] == ["NDCG averaged over the 30 requests with two or more candidates: "
                               "40 of 70 requests have one candidate (NDCG 1 by construction) "
                               "and are left out"]
    assert slates_only["notes"] == []


def test_head_metrics_weight_the_presence_head():
    rows = _rows()
    result = metrics.evaluate(CONFIG, _scored(rows, "signal", None))
    rating = result["heads"]["rating"]["slices"]["overall"]
    assert rating["n"] == rows["rating_present"].sum()
    rated = rows["rating_present"] == 1
    expected = np.mean((rows["rating"][rated] - _predict(rows["signal"])["rating"][rated]) ** 2)
    assert rating["mse"] == pytest.approx(expected)
    click = result["heads"]["click"]["slices"]["overall"]
    assert click["auc"] > 0.7 and click["n"] == len(rows["click"])
    assert click["calibration"] == pytest.approx(click["mean_prediction"] / click["mean_label"])
    # No position slice in the ranking: NDCG per request, overall and per device only.
    assert set(result["ranking"]) == {"overall", "device=desktop", "device=mobile", "device=tv"}
    assert result["comparison"] is None and result["blessed"]  # first run: floors only


def test_an_equally_good_model_is_blessed_and_a_clearly_worse_one_is_not():
    rows = _rows()
    same = metrics.evaluate(CONFIG, _scored(rows, "signal", "signal"))
    assert same["blessed"], same["failures"]
    assert same["comparison"]["click"]["diff"] == 0
    worse = metrics.evaluate(CONFIG, _scored(rows, "noise", "signal"))
    assert not worse["blessed"]
    failed = {f.split("/")[0] for f in worse["failures"]}
    assert {"click", "like", "rating"} <= failed
    assert any("(vs baseline)" in f and "needs change_threshold" in f for f in worse["failures"])
    better = metrics.evaluate(CONFIG, _scored(rows, "signal", "noise"))
    assert better["blessed"], better["failures"]


def test_the_decision_uses_the_confidence_bound_not_the_point_estimate():
    rows = _rows(400)
    rng = np.random.default_rng(1)
    slightly = rows["signal"] + rng.normal(0, 0.5, len(rows["signal"])).astype(np.float32)
    rows = {**rows, "noise": slightly}
    result = metrics.evaluate(CONFIG, _scored(rows, "noise", "signal"))
    c = result["comparison"]["click"]
    # Worse by more than the 0.01 tolerance as a point estimate, not beyond it with 95% confidence.
    assert c["diff"] < -0.01 < c["upper"]
    assert not any(f.startswith("click/") for f in result["failures"])
    strict = CONFIG.replace(evaluation=dataclasses.replace(CONFIG.evaluation, confidence=0.5))
    failures = metrics.evaluate(strict, _scored(rows, "noise", "signal"))["failures"]
    assert any(f.startswith("click/") for f in failures)


def test_floors_and_nan_refuse_without_a_baseline():
    rows = _rows()
    heads = tuple(dataclasses.replace(h, value_threshold=0.99 * (h.name == "click")) for h in CONFIG.heads)
    floors = CONFIG.replace(heads=heads)
    result = metrics.evaluate(floors, _scored(rows, "signal", None))
    assert result["failures"] == [f"click/auc = {result['heads']['click']['slices']['overall']['auc']:.4g} "
                                  "on overall, needs value_threshold: >= 0.99"]
    scored = _scored(rows, "signal", None)
    scored.candidate["watch_time"][:] = np.nan
    result = metrics.evaluate(CONFIG, scored)
    assert result["failures"] == ["watch_time/mse = nan on overall, needs a finite value"]
    assert json.loads(json.dumps(result, allow_nan=False))  # NaN is stored as null


# ---------------------------------------------------------------------------
# The executor, end to end on tiny SavedModels and an Examples artifact built here.


def _save_model(path: str, column: str) -> None:
    import tensorflow as tf

    class Fake(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            x = tf.io.parse_example(examples, {column: tf.io.FixedLenFeature([], tf.float32)})[column]
            p = tf.sigmoid(2 * x)
            return {"click": p, "like": p / 2, "dismiss": (1 - p) / 3, "watch_time": 30 * p * p,
                    "rating": 1 + 4 * p, "score": p}

    model = Fake()
    tf.saved_model.save(model, os.path.join(path, "Format-Serving"),
                        signatures={"serving_default": model.serve})


def _examples_artifact(root: str, rows: dict[str, np.ndarray], span: int):
    import tensorflow as tf
    from tfx.types import artifact_utils, standard_artifacts

    artifact = standard_artifacts.Examples()
    artifact.uri = os.path.join(root, f"examples_{span}")
    artifact.split_names = artifact_utils.encode_split_names(["train", "eval"])
    artifact.set_int_custom_property("span", span)  # where ExampleGen records it (pipeline/spans.py)
    folder = os.path.join(artifact.uri, "Split-eval")
    os.makedirs(folder)
    with tf.io.TFRecordWriter(os.path.join(folder, "data_tfrecord-00000-of-00001.gz"), "GZIP") as writer:
        for i in range(len(rows["click"])):
            feature = {}
            for name, values in rows.items():
                v = values[i]
                if isinstance(v, str):
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                elif np.issubdtype(type(v), np.integer):
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))
                else:
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return artifact


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two spans of eval rows and two models: `good` reads the signal, `bad` reads noise."""
    from tfx.types import standard_artifacts

    root = str(tmp_path_factory.mktemp("evaluator"))
    spans = [_examples_artifact(root, _rows(600, seed=s), span=20260101 + s) for s in range(2)]
    models = {}
    for i, (name, column) in enumerate((("good", "signal"), ("bad", "noise"))):
        model = standard_artifacts.Model()
        model.uri = os.path.join(root, name)
        model.id = 10 + i
        _save_model(model.uri, column)
        models[name] = model
    return root, spans, models


def _run(tmp_path, spans, model, baseline, config: Config = CONFIG):
    from tfx.types import standard_artifacts

    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(tmp_path / "evaluation"), str(tmp_path / "blessing")
    from watchnext.pipeline.cache_keys import evaluator_view

    component.Executor().Do(
        {"examples": spans, "model": [model], **({"baseline_model": [baseline]} if baseline else {})},
        {"evaluation": [evaluation], "blessing": [blessing]},
        {component.EVAL_CONFIG_KEY: evaluator_view(config).to_json()})
    return component.read_metrics(evaluation.uri), blessing


def test_executor_blesses_like_tfx_and_reads_every_span(tiny, tmp_path):
    _, spans, models = tiny
    result, blessing = _run(tmp_path, spans, models["good"], models["good"])
    assert result["blessed"] and result["examples"] == 1200 and result["spans"] == [20260101, 20260102]
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_string_custom_property("current_model") == models["good"].uri
    assert blessing.get_int_custom_property("current_model_id") == 10
    assert blessing.get_int_custom_property("baseline_model_id") == 10
    assert os.listdir(blessing.uri) == ["BLESSED"]
    assert result["comparison"]["click"]["diff"] == 0
    # The scores served by the model are the ones the metrics used.
    rows = [_rows(600, seed=s) for s in range(2)]
    labels = np.concatenate([r["click"] for r in rows])
    p = _predict(np.concatenate([r["signal"] for r in rows]))["click"]
    from watchnext.components.evaluator.paired import auc

    assert result["heads"]["click"]["slices"]["overall"]["auc"] == pytest.approx(auc(labels, p), abs=1e-6)


def test_executor_refuses_a_worse_model_and_names_why(tiny, tmp_path):
    _, spans, models = tiny
    result, blessing = _run(tmp_path, spans[-1:], models["bad"], models["good"])
    assert not result["blessed"] and result["spans"] == [20260102]
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.listdir(blessing.uri) == ["NOT_BLESSED"]
    assert any(f.startswith("click/auc (vs baseline)") for f in result["failures"])


def test_executor_first_run_has_no_baseline_properties(tiny, tmp_path):
    _, spans, models = tiny
    result, blessing = _run(tmp_path, spans, models["bad"], None)
    assert result["blessed"] and result["comparison"] is None  # no floors configured: nothing to fail
    assert not blessing.has_custom_property("baseline_model")
    assert blessing.get_int_custom_property("current_model_id") == 11


def test_a_missing_slice_column_is_skipped_with_a_note_and_a_missing_label_is_named(tiny, tmp_path):
    _, spans, models = tiny
    config = CONFIG.replace(features=dataclasses.replace(CONFIG.features, slices=("country",)))
    result, _ = _run(tmp_path, spans, models["good"], None, config=config)
    assert result["notes"] == ["slice `country` skipped: the eval data have no column 'country'"]
    assert not any(name.startswith("country") for name in result["heads"]["click"]["slices"])
    assert "overall" in result["ranking"]
    files = component.eval_files(spans)
    assert set(component._column_spec(files, ["click", "country"], optional=("country",))) == {"click"}
    with pytest.raises(ValueError, match="no column 'country'"):
        component._column_spec(files, ["click", "country"])


def test_ndcg_is_skipped_with_a_note_when_every_request_has_one_candidate():
    single = metrics.evaluate(CONFIG, _scored(_rows(300, slate=1), "signal", "noise"))
    assert "ranking" not in single and single["notes"] == [metrics.SINGLE_CANDIDATE_NOTE]
    assert single["heads"]["click"]["slices"]["overall"]["n"] == 300  # the heads are still evaluated
    slates = metrics.evaluate(CONFIG, _scored(_rows(300, slate=10), "signal", "noise"))
    assert slates["notes"] == [] and slates["ranking"]["overall"]
    assert metrics.has_slates(np.array([0, 1, 2, 2])) and not metrics.has_slates(np.array([0, 1, 2]))
    assert not metrics.has_slates(np.array([], dtype=np.int64))


def test_pipeline_evaluates_the_training_window_by_default(tmp_path):
    from watchnext.pipeline.pipeline import create_pipeline

    def evaluator(config):
        built = create_pipeline(config, logs_dir=str(tmp_path / "logs"), pipeline_root=str(tmp_path / "root"))
        return {c.id: c for c in built.components}["Evaluator"]

    assert evaluator(Config()).inputs["examples"].producer_component_id == "span_window"
    newest = Config().replace(evaluation=dataclasses.replace(Config().evaluation, whole_window=False))
    assert evaluator(newest).inputs["examples"].producer_component_id == "LogExampleGen"
    # Keyed on what it reads only: the training budget does not touch the Evaluator's cache.
    longer = Config().replace(training=dataclasses.replace(Config().training, train_steps=999))
    spec = evaluator(Config()).exec_properties["eval_config"]
    assert evaluator(longer).exec_properties["eval_config"] == spec
    assert EvaluatorView.from_json(spec).evaluation == Config().evaluation


def test_a_model_without_a_configured_head_is_named(tiny):
    _, spans, models = tiny
    share = dataclasses.replace(CONFIG.heads[0], name="share", label="share")
    extra = CONFIG.replace(heads=(*CONFIG.heads, share))
    files = component.eval_files(spans)
    with pytest.raises(ValueError, match=r"good/Format-Serving: serving_default has no output \['share'\]"):
        component.score(extra, files, component.Scorer(os.path.join(models["good"].uri, "Format-Serving")),
                        None, 256)


def test_curves_hold_the_roc_and_calibration_of_the_overall_rows():
    rows = _rows()
    result = metrics.evaluate(CONFIG, _scored(rows, "signal", None))
    click = result["heads"]["click"]["curves"]
    fpr, tpr = np.array(click["roc"]["fpr"]), np.array(click["roc"]["tpr"])
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and len(fpr) <= metrics.ROC_POINTS + 1
    # The trapezoid area under the sampled ROC is the AUC the table reports, to sampling resolution.
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(result["heads"]["click"]["slices"]["overall"]["auc"], abs=0.01)
    cal = click["calibration"]
    assert len(cal["n"]) == metrics.CALIBRATION_BINS and sum(cal["n"]) == len(rows["click"])
    assert cal["mean_prediction"] == sorted(cal["mean_prediction"])  # bins in prediction order
    # The fake model is calibrated by construction: every bin's label rate is near its prediction.
    assert np.allclose(cal["mean_prediction"], cal["mean_label"], atol=0.08)
    # A presence-masked regression head bins only its labelled rows, and has no ROC.
    rating = result["heads"]["rating"]["curves"]
    assert "roc" not in rating and sum(rating["calibration"]["n"]) == int(rows["rating_present"].sum())
