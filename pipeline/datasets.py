"""Simulated logs → labelled examples → tf.Transform features, outside TFX, with ground truth.

Why: checking that the model learns (tests/models/test_learning.py) and comparing the
architectures (scripts/check_variants.py) needs the pipeline's data path — the
ExampleGen's join and split, the real `preprocessing_fn` analysed and applied by
tf.Transform on Beam — but not the orchestration, and it needs the simulator's truth
for the eval impressions, which the pipeline never reads. This module runs that path
in one in-memory Beam pipeline:

    simulate ─ JoinLogsToExampleBatches ─ SplitBatch (LogExampleGen's own join and split)
      ├─ train ─ AnalyzeDataset(preprocessing_fn) ─ transform_fn (written, as Transform does)
      │        └ TransformDataset ─ transformed train tf.Examples (TFRecord)
      └─ eval  ─ raw tf.Examples (TFRecord), scored later through the saved transform graph

The raw schema is what SchemaGen infers for these logs with `infer_feature_shape=True`:
every single-valued column FixedLen [1] of the schema's type, watch_history VarLen
(checked once against tfdv.infer_schema on a simulated eval split: identical specs).
Models are fitted by models/fit.py, as the Trainer fits them.

Why in pipeline/ and not simulator/: it stands on the simulator, the ExampleGen (components/)
and the models (preprocessing_fn, fit), which share a floor and may not import each other;
only the floor above them, pipeline/, may join them.
"""

from __future__ import annotations

import glob
import gzip
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.components.log_example_gen import transforms
from watchnext.components.log_example_gen.component import make_output_config
from watchnext.components.log_example_gen.executor import SplitBatch
from watchnext.core import log_schema as schema
from watchnext.core.config import Config
from watchnext.models import features, fit
from watchnext.models.model import WatchNextModel
from watchnext.models.preprocessing import CONFIG_KEY, preprocessing_fn
from watchnext.simulator.simulate import simulate

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from tfx_bsl.coders import example_coder
from tfx_bsl.public import tfxio

log = logging.getLogger(__name__)

TRAIN, EVAL = "train", "eval"
# What identifies an impression in every log (the join key of transforms.JoinLogsToExamples).
KEY_FIELDS = (schema.REQUEST_ID, schema.CANDIDATE_VIDEO_ID)
# Truth columns kept for the eval impressions (schema.TRUTH_FIELDS).
TRUTH_COLUMNS = ("examination", "p_click", "p_like", "p_dismiss", "expected_watch_time", "shuffled")


def raw_feature_spec() -> dict[str, Any]:
    """The parse spec of the ExampleGen's examples, as SchemaGen infers it (see module docstring)."""
    dtypes = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}
    multivalent = {f.name for f in schema.IMPRESSION_FIELDS if f.type == "string_list"}
    return {name: tf.io.VarLenFeature(dtypes[kind]) if name in multivalent
            else tf.io.FixedLenFeature([1], dtypes[kind])
            for name, kind in schema.example_feature_types().items()}


@dataclass
class FeaturizedSimulation:
    """One simulated day, joined, split and featurized; the eval split with its truth.

    `eval_raw` are the eval split's serialized raw tf.Examples as the ExampleGen writes them
    (model inputs plus request_id, timestamp, position and labels); `eval_keys`
    ((request_id, candidate_video_id)), `eval_labels` and `truth` are aligned with them
    row by row. The train split exists only transformed, in `train_files` (gzip'd TFRecords).
    """

    config: Config
    work_dir: str
    transform_dir: str
    train_files: list[str]
    eval_raw: list[bytes]
    eval_keys: list[tuple[str, str]]
    eval_labels: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    counts: dict[str, int] = field(default_factory=dict)

    def tf_transform_output(self) -> tft.TFTransformOutput:
        return tft.TFTransformOutput(self.transform_dir)

    def vocab_sizes(self) -> dict[str, int]:
        """Vocabulary sizes by vocabulary name, as Transform computed them (for build_model)."""
        return features.vocab_sizes(self.tf_transform_output(), self.config)

    def train_dataset(self, batch_size: int, seed: int) -> tf.data.Dataset:
        """Shuffled batches of transformed train features and labels, repeated forever, read as
        the Trainer reads them (fit.transformed_dataset)."""
        schema = self.tf_transform_output().transformed_metadata.schema
        return fit.transformed_dataset(self.train_files, schema, batch_size, seed)

    def eval_features(self, position: bool = True, batch_size: int = 4096, labels: bool = False
                      ) -> dict[str, np.ndarray]:
        """Transformed eval features through the saved transform graph (as the served model
        does); without the position key when `position` is False; with the transformed labels
        only when `labels` is True (a validation set for early stopping, read as the Trainer
        reads its eval split)."""
        raw_spec = self.tf_transform_output().raw_feature_spec()
        drop = (set(self.config.label_keys) if not labels else set()) | (
            {self.config.features.position} if not position else set())
        spec = {k: v for k, v in raw_spec.items() if k not in drop}
        layer = self.tf_transform_output().transform_features_layer()
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(self.eval_raw), batch_size):
            parsed = tf.io.parse_example(self.eval_raw[start:start + batch_size], spec)
            parts.append({k: v.numpy() for k, v in layer(parsed).items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def featurized_simulation(work_dir: str, impressions: int = 60000, seed: int = 7,
                          config: Config | None = None, day: int = 0,
                          **simulator_overrides: Any) -> FeaturizedSimulation:
    """Simulate one day of `impressions` into `work_dir`, then join, split and featurize it.

    `day` picks which day of the seed's world (0 = its first span): every day shares the
    world's users and videos but has its own requests, so day 1 featurized by its own
    Transform is what a daily job sees the day after day 0 (the warm-start test).
    Takes about a minute for 60k impressions on 2 cores, mostly fixed costs (Beam, tracing
    the preprocessing_fn for each analysis phase). `simulator_overrides` go to `simulate`.
    """
    config = config or Config()
    t0 = time.time()
    logs_dir = os.path.join(work_dir, "logs")
    # The simulator derives day d's draws from (seed, d), so simulating days 0..day and
    # keeping the last gives the same span a multi-day simulation would.
    summary = simulate(logs_dir, days=day + 1, impressions_per_day=impressions, seed=seed,
                       **simulator_overrides)
    span = summary["spans"][day]["span"]
    files = {log_name: sorted(glob.glob(os.path.join(logs_dir, log_name, f"span={span}", "*")))
             for log_name in (schema.IMPRESSIONS_LOG, schema.EVENTS_LOG, schema.TRUTH_LOG)}
    t1 = time.time()
    examples_dir = os.path.join(work_dir, "examples")
    transform_dir = os.path.join(work_dir, "transform")
    for stale in (examples_dir, transform_dir):  # an earlier run's shards would match the globs below
        shutil.rmtree(stale, ignore_errors=True)
    _run_beam(config, files, examples_dir, transform_dir, os.path.join(work_dir, "tmp"))

    t2 = time.time()
    eval_raw = _read_records(os.path.join(examples_dir, f"{EVAL}-raw-*"))
    eval_keys, eval_labels = _keys_and_labels(eval_raw, config)
    truth = _truth_for(files[schema.TRUTH_LOG], eval_keys)
    train_files = sorted(glob.glob(os.path.join(examples_dir, f"{TRAIN}-transformed-*")))
    counts = {"impressions": summary["impressions"], "events": summary["events"],
              "train_examples": sum(len(b) for b in tf.data.TFRecordDataset(train_files, "GZIP").batch(4096)),
              "eval_examples": len(eval_raw)}
    log.info("featurized simulation in %s: simulate %.0f s, join+split+transform (Beam) %.0f s, "
             "reading back %.0f s; %s", work_dir, t1 - t0, t2 - t1, time.time() - t2, counts)
    return FeaturizedSimulation(config, work_dir, transform_dir, train_files, eval_raw, eval_keys,
                                eval_labels, truth, counts)


def _run_beam(config: Config, files: dict[str, list[str]], examples_dir: str, transform_dir: str,
              temp_dir: str) -> None:
    """Join → split → analyze on train → transform train, write eval raw (one Beam pipeline)."""
    split = SplitBatch.from_split_config(make_output_config(config.data.eval_percent).split_config)
    if split.split_names != [TRAIN, EVAL]:
        raise ValueError(f"expected splits {[TRAIN, EVAL]} from make_output_config, got {split.split_names}")
    raw_schema = schema_utils.schema_from_feature_spec(raw_feature_spec())
    source = tfxio.TFExampleBeamRecord(physical_format="inmem", telemetry_descriptors=["watchnext"],
                                       schema=raw_schema)
    custom_config = {CONFIG_KEY: config.to_json()}
    gzip_records = beam.io.filesystem.CompressionTypes.GZIP

    options = PipelineOptions(list(config.pipeline.beam_args))
    with beam.Pipeline(options=options) as p, tft_beam.Context(temp_dir=temp_dir):
        # LogExampleGen's executor does exactly this, then writes each split.
        joined = p | "JoinLogs" >> transforms.JoinLogsToExampleBatches(
            files[schema.IMPRESSIONS_LOG], files[schema.EVENTS_LOG], config.features.max_position)
        serialized = joined[transforms.EXAMPLES] | "SplitByRequest" >> beam.ParDo(split).with_outputs(
            transforms.COUNTS, TRAIN, EVAL)
        _ = serialized[EVAL] | "WriteEvalRaw" >> beam.io.WriteToTFRecord(
            os.path.join(examples_dir, f"{EVAL}-raw"), file_name_suffix=".gz", compression_type=gzip_records)

        train_batches = serialized[TRAIN] | "DecodeTrain" >> source.BeamSource()
        dataset = (train_batches, source.TensorAdapterConfig())
        transform_fn = dataset | "Analyze" >> tft_beam.AnalyzeDataset(
            lambda x: preprocessing_fn(x, custom_config))
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(transform_dir)
        transformed, _ = (dataset, transform_fn) | "TransformTrain" >> tft_beam.TransformDataset(
            output_record_batches=True)
        _ = (transformed
             | "EncodeTrain" >> beam.FlatMap(lambda batch: example_coder.RecordBatchToExamples(batch[0]))
             | "WriteTrain" >> beam.io.WriteToTFRecord(
                 os.path.join(examples_dir, f"{TRAIN}-transformed"), file_name_suffix=".gz",
                 compression_type=gzip_records))
    # TFTransformOutput.raw_feature_spec reads the raw schema from here (TFX's Transform writes it too).
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(raw_schema),
                               os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR))


def _read_records(pattern: str) -> list[bytes]:
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no records match {pattern}")
    # Batched: iterating a dataset one record at a time in eager mode costs ~0.3 ms per record.
    batches = tf.data.TFRecordDataset(paths, compression_type="GZIP").batch(4096)
    return [r for batch in batches for r in batch.numpy().tolist()]


def _keys_and_labels(raw: list[bytes], config: Config) -> tuple[list[tuple[str, str]], dict[str, np.ndarray]]:
    """(request_id, candidate_video_id) of each example and its label columns."""
    keys, labels = [], {k: [] for k in config.label_keys}
    example = tf.train.Example()
    for record in raw:
        example.ParseFromString(record)
        f = example.features.feature
        keys.append(tuple(f[k].bytes_list.value[0].decode() for k in KEY_FIELDS))
        for k, values in labels.items():
            feature = f[k]
            values.append((feature.int64_list.value or feature.float_list.value)[0])
    return keys, {k: np.asarray(v, dtype=np.float64) for k, v in labels.items()}


def _truth_for(paths: list[str], keys: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """The simulator's truth for each key, aligned with `keys` (KeyError if one is missing)."""
    by_key: dict[tuple[str, str], tuple[float, ...]] = {}
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                by_key[tuple(row[k] for k in KEY_FIELDS)] = tuple(row[c] for c in TRUTH_COLUMNS)
    rows = np.asarray([by_key[k] for k in keys], dtype=np.float64)
    return {c: rows[:, i] for i, c in enumerate(TRUTH_COLUMNS)}


def train_model(data: FeaturizedSimulation, config: Config, steps: int, batch_size: int | None = None
                ) -> WatchNextModel:
    """The model for `config` fitted for `steps` batches of `data`'s train split through
    models/fit.py, as the Trainer's run_fn fits it (seeds from training.seed)."""
    t = config.training
    tf_keras.utils.set_random_seed(t.seed)
    train = data.train_dataset(batch_size or t.batch_size, t.seed)
    model = fit.new_model(config, data.vocab_sizes(), train)
    fit.fit(model, train, steps)
    return model
