"""The watchnext TFX pipeline: one `create_pipeline`, used by every runner.

Data flows top to bottom: logs → examples → statistics → schema → anomalies →
features → model → evaluation → push. The local runner and the Kubeflow runner
call the same function and differ only in where it runs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import watchnext  # first: pins Keras 2 before TensorFlow loads
from watchnext.components.atomic_pusher import make_atomic_pusher
from watchnext.components.data_gate import DRIFT_SPLIT_PAIRS, DataGate, drift_config
from watchnext.components.evaluator import Evaluator
from watchnext.components.log_example_gen import make_log_example_gen
from watchnext.components.table_example_gen import make_table_example_gen
from watchnext.core.config import Config
from watchnext.core.contract import CONFIG_KEY, PREPROCESSING_FN, RUN_FN, TUNER_FN
from watchnext.pipeline import beam
from watchnext.pipeline.cache_keys import evaluator_view, trainer_view, transform_view, tuner_view
from watchnext.pipeline.served_model import LatestPushedModelStrategy
from watchnext.pipeline.spans import PreviousSpanStrategy, RollingWindowStrategy
from watchnext.pipeline.vertex_training import vertex_trainer

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx

# Not exported under tfx.v1 in TFX 1.16, but a standard component since 1.13.
from tfx.components.distribution_validator.component import DistributionValidator
from tfx.types.channel import UnionChannel

# Key of a hash of watchnext's own sources in custom_config: functions named by import
# path are not fingerprinted by TFX, so without it a code change would hit the cache.
CODE_VERSION_KEY = "watchnext_code_version"
# The nodes that resolve and describe yesterday's span for the drift check. On an output
# folder's first span there is no yesterday: they are skipped, and so is the drift check.
# When yesterday's run left statistics of yesterday's span, the describing node is skipped.
PREVIOUS_SPAN_ID = "previous_span"
PREVIOUS_STATISTICS_ID = "previous_span_statistics"
# The resolver of the model being served (local runs; see pipeline/served_model.py).
SERVED_MODEL_ID = "served_model"


def code_version() -> str:
    """A hash of the installed watchnext sources that define features and model."""
    root = Path(watchnext.__file__).parent
    digest = hashlib.sha256()
    for sub in ("models", "pipeline", "components"):
        for path in sorted((root / sub).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def statistics_options(config: Config) -> tfdv.StatsOptions | None:
    """StatisticsGen's options: TFDV's sample rate from validation.statistics_sample_rate (None at
    1.0: TFX's defaults, every example, exactly as before the knob existed)."""
    rate = config.validation.statistics_sample_rate
    return None if rate >= 1.0 else tfdv.StatsOptions(sample_rate=rate)


def create_pipeline(config: Config, logs_dir: str, pipeline_root: str,
                    metadata_connection_config: object | None = None,
                    beam_pipeline_args: list[str] | None = None,
                    run_fn: str = RUN_FN, span: int | None = None,
                    custom_resolvers: bool = True, trainer_image: str = "") -> tfx.dsl.Pipeline:
    """The whole pipeline for `config`, reading the logs in `logs_dir`.

    `span` ingests that daily span instead of the newest one (backfills). `run_fn` names
    the Trainer's function by import path; tests swap in a deliberately broken trainer
    to prove the Evaluator stops it. `custom_resolvers=False` (the Kubeflow V2 compiler
    accepts no custom resolver strategy) trains on the new span alone, skips the drift
    check and takes the latest blessed model for the served one. `trainer_image` (Kubeflow:
    the pipeline's image) lets training.vertex_workers > 0 run the Trainer as a Vertex AI job.
    """
    version = code_version()
    custom_config = {CONFIG_KEY: trainer_view(config).to_json(), CODE_VERSION_KEY: version}
    # Transform gets only what preprocessing_fn reads, so that changing, say, the
    # training steps does not invalidate the cached Transform.
    transform_config = {CONFIG_KEY: transform_view(config).to_json(), CODE_VERSION_KEY: version}
    components = []

    # Join the newest span's impression and event logs into labelled tf.Examples.
    # (data.source table: read CSV rows instead, into seeded train/eval/test splits;
    # `logs_dir` is then the table's file or glob.)
    if config.data.source == "table":
        example_gen = make_table_example_gen(config, logs_dir)
    else:
        example_gen = make_log_example_gen(
            logs_dir, eval_percent=config.data.eval_percent,
            max_rejected_fraction=config.data.max_rejected_fraction,
            max_position=config.features.max_position, span=span, log_schema=config.log_schema,
            span_format=config.data.span_format)
    components.append(example_gen)

    # Train on a rolling window of the newest spans ingested so far (logs only: a table
    # has no spans).
    examples = example_gen.outputs["examples"]
    if custom_resolvers and config.data.source == "logs":
        window = tfx.dsl.Resolver(
            strategy_class=RollingWindowStrategy, config={"num_spans": config.data.window_spans},
            examples=example_gen.outputs["examples"],
        ).with_id("span_window")
        components.append(window)
        examples = window.outputs["examples"]

    # Describe the new span: the data validation below and the schema rest on these.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"],
                                                  stats_options=statistics_options(config))
    components.append(statistics_gen)

    # Infer the schema (feature types, shapes, domains) the Transform graph parses by.
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"],
                                          infer_feature_shape=True)
    components.append(schema_gen)

    # Flag anomalies (missing columns, unexpected values) in the new span.
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    components.append(example_validator)

    # Compare the new span with the one before it (label rates, feature histograms, example
    # count, vanished columns). Yesterday's run described yesterday's span with the StatisticsGen
    # above: the previous-span resolver hands those statistics on (same options, with the
    # compared split) and the previous-span StatisticsGen, left without examples, is skipped.
    # A span ingested alone (`ingest_window`, a backfill) has no statistics: the resolver hands
    # on its examples instead and their training split is described here, the same way. The
    # Kubeflow V2 compiler takes no custom resolver, so there (custom_resolvers=False) only
    # the schema check gates the run.
    drift_anomalies = None
    if custom_resolvers:
        previous_span = tfx.dsl.Resolver(
            strategy_class=PreviousSpanStrategy,
            config={"baseline_splits": sorted({baseline for _, baseline in DRIFT_SPLIT_PAIRS})},
            examples=example_gen.outputs["examples"], statistics=statistics_gen.outputs["statistics"],
        ).with_id(PREVIOUS_SPAN_ID)
        previous_statistics = tfx.components.StatisticsGen(
            examples=previous_span.outputs["examples"], exclude_splits=["eval"],
            stats_options=statistics_options(config),
        ).with_id(PREVIOUS_STATISTICS_ID)
        # Whichever of the two holds yesterday's statistics (neither on a first span).
        baseline_statistics = UnionChannel([previous_span.outputs["statistics"],
                                            previous_statistics.outputs["statistics"]])
        distribution_validator = DistributionValidator(
            statistics=statistics_gen.outputs["statistics"],
            baseline_statistics=baseline_statistics.as_optional(),
            config=drift_config(config), include_split_pairs=DRIFT_SPLIT_PAIRS)
        components += [previous_span, previous_statistics, distribution_validator]
        drift_anomalies = distribution_validator.outputs["anomalies"]

    # Stop here, naming each anomaly, instead of training on data that failed validation.
    data_gate = DataGate(examples=example_gen.outputs["examples"],
                         anomalies=example_validator.outputs["anomalies"], drift_anomalies=drift_anomalies,
                         fail_on_anomalies=config.validation.fail_on_anomalies)
    components.append(data_gate)

    # Featurize with one graph that is also embedded in the served model.
    transform = tfx.components.Transform(
        examples=examples,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=transform_config,
        disable_statistics=not config.validation.transform_statistics,
    )
    transform.add_upstream_node(data_gate)
    components.append(transform)

    # The model being served now: the Trainer's warm start and the Evaluator's baseline.
    # Resolved through the Pusher's records, so a model that was blessed but whose push
    # was interrupted is not taken for the served one (pipeline/served_model.py). The
    # Kubeflow V2 compiler takes only built-in strategies: there, the latest blessed model.
    if custom_resolvers:
        baseline = tfx.dsl.Resolver(
            strategy_class=LatestPushedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        ).with_id(SERVED_MODEL_ID)
    else:
        baseline = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id("latest_blessed_model")
    components.append(baseline)

    # Search experts, expert width, learning rate and gate dropout on a small budget
    # (tuning.enabled); the best values feed the Trainer. Keyed on what the search reads only.
    # What the Tuner's trials and the Trainer both read.
    fit_inputs = {"examples": transform.outputs["transformed_examples"],
                  "transform_graph": transform.outputs["transform_graph"],
                  "schema": schema_gen.outputs["schema"]}
    tuner = None
    if config.tuning.enabled:
        tuner = tfx.components.Tuner(
            tuner_fn=TUNER_FN,
            **fit_inputs,
            train_args=tfx.proto.TrainArgs(num_steps=config.tuning.train_steps),
            eval_args=tfx.proto.EvalArgs(num_steps=config.tuning.eval_steps),
            custom_config={CONFIG_KEY: tuner_view(config).to_json(), CODE_VERSION_KEY: version},
        )
        components.append(tuner)

    # Fit the multitask model (warm-started from the served one) and export it.
    # A Vertex AI job of training.vertex_workers replicas when compiled for Kubeflow with them.
    trainer_class, trainer_config = vertex_trainer(config, custom_config, trainer_image)
    trainer = trainer_class(
        run_fn=run_fn,
        **fit_inputs,
        # num_steps 0 is "unset" (fn_args.train_steps/eval_steps None): run_fn then derives the
        # steps from training.epochs and evaluates on the whole eval split (models/trainer.py).
        train_args=tfx.proto.TrainArgs(num_steps=config.training.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.training.eval_steps),
        custom_config=trainer_config,
        base_model=baseline.outputs["model"] if config.training.warm_start else None,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
    )
    components.append(trainer)

    # Per-head, per-slice metrics and NDCG per request on the eval splits of the training
    # window (evaluation.whole_window), candidate and served model scored on the same rows;
    # bless unless the candidate is worse beyond the tolerance with the configured
    # confidence (components/evaluator).
    evaluator = Evaluator(
        examples=examples if config.evaluation.whole_window else example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=evaluator_view(config).to_json(),
        code_version=version,
    )
    components.append(evaluator)

    # Publish to the folder TF Serving watches, only when blessed, never half-written.
    with tfx.dsl.Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = make_atomic_pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            base_directory=os.path.join(config.serving_dir, config.serving.model_name),
            keep_versions=config.serving.keep_versions,
        )
    components.append(pusher)

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args if beam_pipeline_args is not None
        else beam.beam_pipeline_args(config),
    )
