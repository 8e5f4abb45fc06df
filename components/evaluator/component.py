"""Evaluator: score the eval rows once with the candidate and the served model, in batches.

It stands where TFX's Evaluator stood and keeps its contract: the same input keys
(`examples`, `model`, optional `baseline_model`), the same outputs (`evaluation`:
ModelEvaluation, `blessing`: ModelBlessing), and on the blessing the custom properties
TFX's Evaluator sets (`blessed`, `current_model`, `current_model_id`, and
`baseline_model`, `baseline_model_id` when there is a baseline) plus the BLESSED /
NOT_BLESSED marker file. So the Pusher's Cond, the Pusher's own blessing check and
TFX's LatestBlessedModelStrategy read it unchanged.

What it does instead of TFMA (issue 15 §2, issue 16 §4): it reads the eval split of
every Examples artifact it is given (the training window's spans by default), feeds the
serialized tf.Examples in batches of `evaluation.batch_size` to both models'
`serving_default`, parses the few raw columns it needs (labels, presence, device,
position, request id), and computes all metrics and the paired comparison in numpy
(metrics.py). The evaluation artifact holds `metrics.json`; report.md and the CLI read it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, ClassVar

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.components.evaluator.metrics import Scored, evaluate
from watchnext.core.config import Config, EvaluatorView
from watchnext.core.contract import EXAMPLES_INPUT, SCORE_OUTPUT, SERVING_SIGNATURE
from watchnext.core.spans import span_of

import numpy as np
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

log = logging.getLogger(__name__)

# Execution properties: the evaluator's view of the config (cache_keys.evaluator_view) as
# JSON, and the hash of watchnext's sources (TFX does not fingerprint executor code).
EVAL_CONFIG_KEY = "eval_config"
CODE_VERSION_KEY = "watchnext_code_version"
# What the evaluation artifact holds.
METRICS_FILE = "metrics.json"
EVAL_SPLIT = "eval"
# TFX's Evaluator constants (tfx/components/evaluator/constants.py), repeated so that the
# contract is visible here.
BLESSED_KEY = "blessed"
CURRENT_MODEL_KEY = "current_model"
CURRENT_MODEL_ID_KEY = "current_model_id"
BASELINE_MODEL_KEY = "baseline_model"
BASELINE_MODEL_ID_KEY = "baseline_model_id"
BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"
# The request id is hashed to an int64 code per row (NDCG groups rows by it).
REQUEST_COLUMN = "request"


class EvaluatorSpec(ComponentSpec):
    """TFX's EvaluatorSpec inputs and outputs; the config as JSON instead of a tfma.EvalConfig."""

    PARAMETERS: ClassVar[dict[str, ExecutionParameter]] = {
        EVAL_CONFIG_KEY: ExecutionParameter(type=str),
        CODE_VERSION_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS: ClassVar[dict[str, ChannelParameter]] = {
        standard_component_specs.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        standard_component_specs.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        standard_component_specs.BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model,
                                                                      optional=True),
    }
    OUTPUTS: ClassVar[dict[str, ChannelParameter]] = {
        standard_component_specs.EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        standard_component_specs.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


def eval_files(examples: list[types.Artifact]) -> list[str]:
    """The eval split's files of every Examples artifact, oldest span first."""
    files = []
    for artifact in sorted(examples, key=lambda a: (span_of(a), a.id)):
        split_names = artifact_utils.decode_split_names(artifact.split_names)
        if EVAL_SPLIT not in split_names:
            raise ValueError(f"Examples artifact {artifact.uri} has no {EVAL_SPLIT!r} split "
                             f"(splits: {split_names})")
        folder = artifact_utils.get_split_uri([artifact], EVAL_SPLIT)
        found = sorted(os.path.join(folder, f) for f in fileio.listdir(folder)
                       if not f.startswith((".", "_")))
        if not found:
            raise ValueError(f"the eval split {folder} holds no files")
        files += found
    return files


def _column_spec(files: list[str], names: list[str], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """tf.io feature specs for `names`, typed as the first example of the first file stores them.

    A name in `optional` (a slice column) that the examples lack is left out, and the
    metrics note it; any other missing name is a ValueError naming the column.
    """
    import tensorflow as tf

    first = next(iter(_dataset(files[0]).take(1)), None)
    if first is None:
        raise ValueError(f"{files[0]}: no examples in the eval split's first file")
    example = tf.train.Example.FromString(first.numpy())
    dtypes = {"float_list": tf.float32, "int64_list": tf.int64, "bytes_list": tf.string}
    spec = {}
    for name in names:
        if name not in example.features.feature:
            if name in optional:
                continue
            raise ValueError(f"{files[0]}: the eval examples have no column {name!r} "
                             f"(columns: {sorted(example.features.feature)})")
        dtype = dtypes[example.features.feature[name].WhichOneof("kind")]
        spec[name] = tf.io.FixedLenFeature([], dtype)
    return spec


def _dataset(path: str) -> Any:
    import tensorflow as tf

    return tf.data.TFRecordDataset(path, compression_type="GZIP" if path.endswith(".gz") else "")


class Scorer:
    """serialized tf.Examples → a SavedModel's serving_default outputs.

    Holds the loaded model: a signature alone does not keep the model's variables alive.
    """

    def __init__(self, model_dir: str) -> None:
        import tensorflow as tf

        self.model_dir = model_dir
        self.model = tf.saved_model.load(model_dir)
        self.signature = self.model.signatures[SERVING_SIGNATURE]

    def check_outputs(self, names: list[str]) -> None:
        """Fail naming the model when its serving_default lacks an output the config expects."""
        missing = sorted(set(names) - set(self.signature.structured_outputs))
        if missing:
            raise ValueError(f"{self.model_dir}: serving_default has no output {missing} "
                             f"(outputs: {sorted(self.signature.structured_outputs)})")

    def __call__(self, batch: Any) -> dict[str, Any]:
        return self.signature(**{EXAMPLES_INPUT: batch})


def _scorer(model: types.Artifact) -> Scorer:
    from tfx.utils import path_utils

    return Scorer(path_utils.serving_model_path(model.uri))


def score(config: Config, files: list[str], candidate: Scorer, baseline: Scorer | None,
          batch_size: int) -> Scored:
    """One pass over `files`: the raw columns the metrics read and each model's outputs."""
    import tensorflow as tf

    f = config.features
    names = list(dict.fromkeys([*config.label_keys, *(n for n in (f.device, f.position, *f.slices) if n),
                                *([f.request_id] if f.request_id else [])]))
    outputs = [*config.head_names, SCORE_OUTPUT]
    for scorer in (candidate, baseline):
        if scorer is not None:
            scorer.check_outputs(outputs)
    required = {*config.label_keys, f.device, f.position, f.request_id}
    spec = _column_spec(files, names, optional=tuple(n for n in f.slices if n not in required))
    names = [n for n in names if n in spec]
    columns: dict[str, list] = {n: [] for n in names}
    cand: dict[str, list] = {o: [] for o in outputs}
    base: dict[str, list] = {o: [] for o in outputs}
    for path in files:
        for batch in _dataset(path).batch(batch_size).prefetch(2):
            parsed = tf.io.parse_example(batch, spec)
            for name in names:
                columns[name].append(parsed[name].numpy())
            for fn, out in ((candidate, cand), (baseline, base)):
                if fn is None:
                    continue
                result = fn(batch)
                for o in outputs:
                    out[o].append(np.reshape(result[o].numpy(), [-1]))
    arrays = {n: np.concatenate(v) for n, v in columns.items()}
    if not len(arrays[names[0]]):
        raise ValueError(f"no eval examples in {files}")
    for name in (f.device, *f.slices):
        if name in arrays and arrays[name].dtype == object:
            arrays[name] = np.array([v.decode() for v in arrays[name].tolist()], dtype=object)
    if f.request_id:
        arrays[REQUEST_COLUMN] = _request_codes(arrays[f.request_id])
    return Scored(arrays, {o: np.concatenate(v) for o, v in cand.items()},
                  {o: np.concatenate(v) for o, v in base.items()} if baseline is not None else None)


def _request_codes(ids: np.ndarray) -> np.ndarray:
    """An int64 code per row, equal exactly when the request ids are equal."""
    _, codes = np.unique(ids, return_inverse=True)
    return codes.astype(np.int64)


class Executor(base_executor.BaseExecutor):
    """Score, compute the metrics, write metrics.json and the blessing (see the module docstring)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        config = EvaluatorView.from_json(exec_properties[EVAL_CONFIG_KEY])
        examples = input_dict[standard_component_specs.EXAMPLES_KEY]
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        baseline = baselines[0] if baselines else None
        files = eval_files(examples)
        start = time.time()
        scored = score(config, files, _scorer(model), _scorer(baseline) if baseline else None,
                       config.evaluation.batch_size)
        scoring = time.time() - start
        result = evaluate(config, scored)
        result.update(
            spans=sorted({span_of(a) for a in examples}),
            candidate_model=model.uri, baseline_model=baseline.uri if baseline else None,
            seconds={"scoring": round(scoring, 3), "metrics": round(time.time() - start - scoring, 3)})
        evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])
        fileio.makedirs(evaluation.uri)
        with fileio.open(os.path.join(evaluation.uri, METRICS_FILE), "w") as out:
            out.write(json.dumps(result, indent=1, sort_keys=True))
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        write_blessing(blessing, model, baseline, result["blessed"])
        log.info("Evaluator: %d eval examples from spans %s in %.1f s; %s", scored.n, result["spans"],
                 time.time() - start, "blessed" if result["blessed"] else "not blessed: "
                 + "; ".join(result["failures"]))


def write_blessing(blessing: types.Artifact, model: types.Artifact, baseline: types.Artifact | None,
                   blessed: bool) -> None:
    """The ModelBlessing exactly as TFX's Evaluator writes it: properties and marker file."""
    blessing.set_string_custom_property(CURRENT_MODEL_KEY, model.uri)
    blessing.set_int_custom_property(CURRENT_MODEL_ID_KEY, model.id)
    if baseline is not None:
        blessing.set_string_custom_property(BASELINE_MODEL_KEY, baseline.uri)
        blessing.set_int_custom_property(BASELINE_MODEL_ID_KEY, baseline.id)
    fileio.makedirs(blessing.uri)
    with fileio.open(os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), "w") as out:
        out.write("")
    blessing.set_int_custom_property(BLESSED_KEY, 1 if blessed else 0)


def read_metrics(evaluation_uri: str) -> dict:
    """The metrics.json an Evaluator run wrote (FileNotFoundError: another evaluator wrote it)."""
    path = os.path.join(evaluation_uri, METRICS_FILE)
    if not fileio.exists(path):
        raise FileNotFoundError(f"no {METRICS_FILE} in {evaluation_uri} (not watchnext's Evaluator)")
    with fileio.open(path) as f:
        return json.loads(f.read())


class Evaluator(base_component.BaseComponent):
    """Per-head, per-slice metrics, NDCG per request and the paired blessing (see the module docstring)."""

    SPEC_CLASS = EvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples: types.BaseChannel, model: types.BaseChannel, eval_config: str,
                 baseline_model: types.BaseChannel | None = None, code_version: str | None = None) -> None:
        super().__init__(spec=EvaluatorSpec(
            examples=examples, model=model, baseline_model=baseline_model,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            eval_config=eval_config, watchnext_code_version=code_version))
