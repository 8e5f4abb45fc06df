"""One typed configuration for the whole of watchnext.

Every feature name, head name, label key, size and threshold lives here, once.
The pipeline, the preprocessing_fn, the model and the evaluator all receive a
`Config` (or its JSON form, inside a TFX component's custom_config) and derive
what they need from it, so that changing a name or a size is a one-line edit in
a YAML file rather than a hunt through the code.

A YAML file only lists what differs from the defaults; it is merged key by key
onto `Config()` and validated: an unknown key, a wrong type or an inconsistent
value raises `ConfigError` naming the dotted path of the offending key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from watchnext.core.errors import UsageError

# ---------------------------------------------------------------------------
# Allowed values (validated in `Config.validate`).
ARCHITECTURES = ("mmoe", "omoe", "shared_bottom", "cgc", "ple", "single_task")
POSITION_MODES = ("shallow_tower", "input_feature", "none")
HEAD_TYPES = ("binary", "regression")
HEAD_GROUPS = ("engagement", "satisfaction")
LABEL_TRANSFORMS = ("none", "log1p")
REGRESSION_LOSSES = ("mse", "weighted_logistic")
PRESENCE_LOSSES = ("batch_mean", "labelled_mean")
SCORE_FORMS = ("identity", "log1p", "complement")
BEAM_PRESETS = ("direct", "direct-multiprocess", "dataflow", "flink", "spark")
DATA_SOURCES = ("logs", "table")
BEAM_ENVIRONMENT_TYPES = ("EXTERNAL", "DOCKER", "PROCESS", "LOOPBACK")
DISTRIBUTIONS = ("default", "mirrored", "multi_worker_mirrored")
NUMERIC_ENCODINGS = ("buckets", "piecewise_linear")


class ConfigError(UsageError, ValueError):
    """A configuration value is unknown, of the wrong type or inconsistent."""


# ---------------------------------------------------------------------------
# Sections.


@dataclass(frozen=True)
class PipelineSection:
    """Where the pipeline runs and writes."""

    name: str = "watchnext"
    output_dir: str = "watchnext_output"
    enable_cache: bool = True
    # Where every Beam-powered component runs (flags made by pipeline/beam.py): direct (in
    # memory, one process), direct-multiprocess (beam_workers local processes), dataflow, or
    # flink/spark (a portable Beam job server at beam_job_endpoint).
    beam_preset: Literal["direct", "direct-multiprocess", "dataflow", "flink", "spark"] = "direct"
    # direct-multiprocess: worker processes; dataflow: max_num_workers; flink: parallelism.
    beam_workers: int = 2
    # Extra Beam flags appended after the preset's (a later flag wins).
    beam_args: tuple[str, ...] = ()
    # dataflow: GCP project, region, and a gs:// folder for temporary and staging files.
    dataflow_project: str = ""
    dataflow_region: str = ""
    dataflow_temp_location: str = ""
    # flink, spark: the job server (host:port) and how it starts the Python SDK workers:
    # EXTERNAL (a worker pool at beam_environment_config, default localhost:50000), DOCKER
    # (the image in beam_environment_config, default the pipeline's image), PROCESS, LOOPBACK.
    beam_job_endpoint: str = ""
    beam_environment_type: Literal["EXTERNAL", "DOCKER", "PROCESS", "LOOPBACK"] = "EXTERNAL"
    beam_environment_config: str = ""
    # flink, spark: Beam's --job_server_timeout, in seconds. Beam's Python PortableRunner also
    # applies it as the deadline of the job's state and message streams, so with Beam's default
    # (60) any component whose Beam job runs longer than a minute fails with DEADLINE_EXCEEDED
    # (seen on the loopback job service). 86400: a day, the longest a daily run may take.
    beam_job_server_timeout: int = 86400


@dataclass(frozen=True)
class TableSection:
    """A table of rows in CSV files (`data.source: table`): any tabular multi-task data.

    Column types follow from how the config uses each column, so no name is listed
    twice: columns in `features.numeric` and the label (and presence) columns of heads
    without `label_from` are numbers; every other column is kept as a string.
    """

    # A CSV file or glob (gzip'd when the name ends in .gz). `watchnext run --logs PATH` sets it.
    path: str = ""
    # Column names in file order, for files without a header row. Empty: the first line of
    # each file is its header.
    columns: tuple[str, ...] = ()
    delimiter: str = ","
    # Percentages of rows per split; a row's split is a hash of (split_seed, file name, line
    # number), so the same seed gives the same split. The test split is held out for
    # benchmarks: the Trainer reads train and eval, the Evaluator eval.
    train_percent: int = 80
    eval_percent: int = 20
    test_percent: int = 0
    split_seed: int = 0


@dataclass(frozen=True)
class DataSection:
    """Which data feed the pipeline and how they are ingested."""

    # logs: impression and event logs, one folder per daily span (LogExampleGen);
    # table: rows of CSV files described by `table` (TableExampleGen).
    source: Literal["logs", "table"] = "logs"
    # Folder of impression/event logs (see README, "Log schema"). Empty: simulate.
    logs_dir: str = ""
    # How many of the newest daily spans to train on.
    window_spans: int = 1
    # Percentage of requests (by hash of request_id) that go to the eval split.
    eval_percent: int = 20
    # The ExampleGen fails when more than this fraction of records is rejected.
    max_rejected_fraction: float = 0.01
    # Simulated log used when logs_dir is empty.
    simulate_days: int = 1
    simulate_impressions_per_day: int = 20000
    simulate_seed: int = 7
    table: TableSection = field(default_factory=TableSection)


@dataclass(frozen=True)
class IdFeature:
    """A categorical feature embedded through a vocabulary computed by Transform.

    Features that share `vocabulary` share one vocabulary and one embedding
    table (query video, candidate video and watch history are all videos).
    """

    name: str
    vocabulary: str
    embedding_dim: int = 16
    # Keep the most frequent ids; the rest fall into OOV buckets.
    max_tokens: int = 50000
    oov_buckets: int = 10
    # A multivalent feature (a list of ids) is mean-pooled over its first max_length ids.
    multivalent: bool = False
    max_length: int = 1


@dataclass(frozen=True)
class NumericEmbedding:
    """A numeric feature also fed to the model through its quantile bin (Gorishniy et al., 2022).

    Transform cuts the feature (after log1p, if listed in `log1p_numeric`) at the `buckets`-quantiles
    of the training data; the boundaries are constants of the Transform graph, so serving still
    sends the raw value. An MLP over one z-scored scalar must spend its first layer carving the
    value into ranges; a heavy-tailed or multimodal feature (capital gains, weeks worked) is
    handed those ranges directly instead.
    - buckets: the bin's index → its own learned `embedding_dim` vector.
    - piecewise_linear: e ∈ [0, 1]^buckets, e_t = 1 for bins below the value's, the fraction of its
      own bin the value covers, 0 above (ordered and continuous) → Dense(embedding_dim) + ReLU.
    """

    name: str
    encoding: Literal["buckets", "piecewise_linear"] = "buckets"
    # Quantile bins (>= 2). Bins that coincide (a mass of zeros) merge; see preprocessing_fn.
    buckets: int = 16
    embedding_dim: int = 4
    # Also feed the z-scored value as before (the embedding adds to it rather than replacing it).
    keep_value: bool = True

    @property
    def output_key(self) -> str:
        """The Transform output (and model input) that carries the encoding, e.g. age_buckets."""
        return f"{self.name}_{self.encoding}"


@dataclass(frozen=True)
class FeaturesSection:
    """The model's inputs: names of raw features as they appear in the examples."""

    ids: tuple[IdFeature, ...] = (
        IdFeature("user_id", "user", embedding_dim=16),
        IdFeature("query_video_id", "video", embedding_dim=16),
        IdFeature("candidate_video_id", "video", embedding_dim=16),
        IdFeature("device", "device", embedding_dim=4, max_tokens=100, oov_buckets=1),
        IdFeature("country", "country", embedding_dim=4, max_tokens=300, oov_buckets=1),
        IdFeature("watch_history", "video", embedding_dim=16, multivalent=True, max_length=20),
    )
    # Numeric features: log1p (if listed in log1p_numeric) then z-scored by Transform.
    numeric: tuple[str, ...] = ("video_duration", "video_age_days", "video_log_views", "user_activity")
    log1p_numeric: tuple[str, ...] = ("video_duration", "video_age_days")
    # Selection-bias features (the shallow tower's inputs). Empty when the data has none
    # (e.g. a table); model.position_mode must then be "none".
    position: str = "position"
    device: str = "device"
    max_position: int = 20
    # Identifies the request a candidate was shown in (query metrics). Empty: no NDCG.
    request_id: str = "request_id"
    # Extra features to slice evaluation by, besides device and position.
    slices: tuple[str, ...] = ()
    # Numeric features (names in `numeric`) also encoded by their quantile bin; see
    # NumericEmbedding. Empty (default): every numeric feature is its z-scored value only.
    numeric_embeddings: tuple[NumericEmbedding, ...] = ()


@dataclass(frozen=True)
class LabelFrom:
    """How a table's ExampleGen derives a binary label from a raw column.

    label = 1 when the column's value, with surrounding spaces stripped, is one of
    `positive_values`, else 0 (e.g. income_50k "50000+." → 1). Empty `column`: the label
    column is read as it is.
    """

    column: str = ""
    positive_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Head:
    """One objective: its label, loss and place in the combined score."""

    name: str
    type: Literal["binary", "regression"]
    label: str
    group: Literal["engagement", "satisfaction"] = "engagement"
    loss_weight: float = 1.0
    # Exponent w_k of this head's prediction in score = prod_k f_k(pred_k) ** w_k.
    score_weight: float = 1.0
    # f_k: identity (p, or the regression value), complement (1 - p, for binary heads
    # whose event is bad, e.g. dismiss) or log1p (log(1 + value), for regression heads).
    score_form: Literal["identity", "log1p", "complement"] = "identity"
    # Regression label transform used for the loss (predictions are served untransformed).
    label_transform: Literal["none", "log1p"] = "none"
    # Label that says whether this head's label exists (loss and metrics masked to it).
    presence: str = ""
    # Whether the shallow tower's position bias is added to this head's logit.
    position_bias: bool = False
    # Blessing: an absolute bound (AUC lower bound or MSE upper bound; 0 disables).
    value_threshold: float = 0.0
    # data.source table only: derive this binary head's `label` column from a raw column.
    label_from: LabelFrom = field(default_factory=LabelFrom)
    # Regression heads only. "mse": squared error on the label after label_transform.
    # "weighted_logistic" (Covington et al., RecSys 2016, for expected watch time): a
    # logistic regression in which every example is a negative of weight 1 and a
    # positive of weight y (the label, >= 0, label_transform "none"), normalized by the
    # batch's total weight. Its optimum is exp(logit) = E[y] in label units, the logit is
    # a log-odds on the scale of the binary heads' (so the shallow tower's additive
    # position bias means the same for it as for click: log E[y] = log P(examined) + …),
    # and its gradients are bounded like a classifier's. MSE on log1p of a zero-inflated
    # target (watch time is 0 on every unclicked impression) sent 4x click's gradient into
    # the shallow tower, whose one bias then fit watch time's scale, not click's: click's
    # share of the oracle gap fell from 0.883 (click alone) to 0.840 (docs/notes/transfer.md).
    regression_loss: Literal["mse", "weighted_logistic"] = "mse"
    # Heads with a `presence` key: how the masked loss is averaged. "labelled_mean": over
    # the batch's labelled examples only, so a head labelled on 0.7% of impressions (the
    # survey rating) is the squared error of one or two examples per batch, each weighing
    # ~150× an example of any other head: its noisy gradient then dominates the shared
    # layers and Adam's second moments there. "batch_mean": Σ over labelled examples / batch
    # size (the labelled mean × the labelled fraction), so every example weighs the same in
    # every head; the head's own tower still learns at full speed (Adam is scale-free per
    # parameter). Default batch_mean (docs/notes/transfer.md).
    presence_loss: Literal["batch_mean", "labelled_mean"] = "batch_mean"


DEFAULT_HEADS: tuple[Head, ...] = (
    Head("click", "binary", "click", "engagement", score_weight=1.0,
         position_bias=True, value_threshold=0.55),
    Head("watch_time", "regression", "watch_time", "engagement", loss_weight=0.5,
         score_weight=0.5, score_form="log1p", position_bias=True, regression_loss="weighted_logistic"),
    Head("like", "binary", "like", "satisfaction", score_weight=0.5, value_threshold=0.52),
    Head("dismiss", "binary", "dismiss", "satisfaction", score_weight=1.0, score_form="complement"),
    Head("rating", "regression", "rating", "satisfaction", loss_weight=0.5,
         score_weight=0.25, presence="rating_present"),
)


@dataclass(frozen=True)
class ModelSection:
    """Architecture and sizes (the paper's MMoE by default)."""

    architecture: Literal["mmoe", "omoe", "shared_bottom", "cgc", "ple", "single_task"] = "mmoe"
    shared_hidden_units: int = 64
    num_experts: int = 4
    expert_units: tuple[int, ...] = (32,)
    # cgc/ple: experts owned by each task, beside the shared ones; ple stacks levels.
    task_experts: int = 1
    ple_levels: int = 2
    gate_dropout: float = 0.1
    tower_units: tuple[int, ...] = (16,)
    position_mode: Literal["shallow_tower", "input_feature", "none"] = "shallow_tower"
    position_dropout: float = 0.1
    position_embedding_dim: int = 4
    shallow_tower_units: tuple[int, ...] = (8,)


@dataclass(frozen=True)
class TrainingSection:
    """Trainer settings."""

    # Explicit step budget, overriding `epochs`: exactly this many steps, no early stopping, the
    # last weights exported; 0: derive the budget from `epochs` (models/trainer.py).
    train_steps: int = 0
    # Eval batches per validation and for the final eval metrics; 0: one pass over the eval split.
    eval_steps: int = 0
    # 1024 by measurement: examples/s and eval AUC at equal epochs per batch size are in
    # docs/notes/train.md. When changing it, scale the learning rate with the square root of
    # the batch (0.003 at 256 → 0.006 at 1024; benchmarks/training_speed.learning_rate_for).
    # It is the global batch of one step: under a distribution with N replicas in sync each
    # replica takes batch_size / N of it (models/distribution.py).
    batch_size: int = 1024
    learning_rate: float = 0.006
    seed: int = 42
    # Start from the last blessed model's weights (embeddings remapped by id) when there is one.
    warm_start: bool = True
    # tf.distribute strategy (models/distribution.py): default (one device), mirrored (every
    # local GPU, else every local CPU device) or multi_worker_mirrored (workers from TF_CONFIG).
    distribution: Literal["default", "mirrored", "multi_worker_mirrored"] = "default"
    # Start each tower's output bias at its label's prior (binary: log-odds of the positive
    # rate; regression: mean of the training-scale label), measured on this many training
    # batches before the first step; 0 starts biases at 0. With a zero bias a rare label
    # makes the first steps push every logit down, and when a tower's output weights all
    # start positive they do it by driving every ReLU of the tower negative: the tower dies
    # and the head predicts a constant (seen on Census-Income, shared_bottom, seed 0).
    prior_bias_batches: int = 50
    # Training budget in full passes over the train split, when train_steps is 0: the steps are
    # ceil(train examples / batch_size) × epochs, the examples counted in the Trainer's train
    # files (models/trainer.py, `count_examples`). Early stopping may end training sooner.
    epochs: int = 10
    # Validate on `eval_steps` eval batches every this many steps (and after the last step), so
    # early stopping can act inside an epoch; 0: once per epoch.
    validation_interval_steps: int = 0
    # Stop after this many validations in a row without the weighted eval loss improving by more
    # than early_stopping_min_delta, and restore the best validation's weights; 0: never stop early
    # (the best weights are still restored at the end).
    early_stopping_patience: int = 3
    early_stopping_min_delta: float = 0.0
    # Kubeflow/Vertex only (compile-kubeflow; local runs ignore these): 0 trains inside the
    # Trainer's own pipeline container (the default); N >= 1 makes the compiled Trainer run as a
    # Vertex AI custom job of N replicas of the pipeline's image, on vertex_machine_type machines
    # in vertex_project/vertex_region: pool 0 the chief (the only one that writes the model),
    # pool 1 the N - 1 workers. N > 1 needs distribution multi_worker_mirrored; batch_size stays
    # the global batch, so each of the N replicas takes batch_size / N examples per step
    # (models/distribution.py).
    vertex_workers: int = 0
    vertex_machine_type: str = "n1-standard-8"
    vertex_project: str = ""
    vertex_region: str = ""


@dataclass(frozen=True)
class EvaluationSection:
    """Evaluator blessing rules."""

    # A candidate is not blessed if a binary head's AUC is below the baseline's by more
    # than this (or a regression head's MSE above it by more than this ratio) with
    # `confidence`: judged on the paired interval, not on the point estimate.
    max_auc_drop: float = 0.01
    max_mse_increase_ratio: float = 0.1
    ndcg_cutoffs: tuple[int, ...] = (5, 10)
    # Gate polarization alarm (models/expert_utilization.py): a head's gate counts as
    # polarized on an example when one expert gets more than polarized_gate_weight of it;
    # the run warns when that happens on more than max_polarized_share of eval examples.
    polarized_gate_weight: float = 0.9
    max_polarized_share: float = 0.5
    # One-sided confidence of the paired comparison (pipeline/paired.py): refuse only when
    # the candidate is worse beyond the tolerance above at this confidence. 0.95 keeps the
    # refusal rate of an equally good retrain at most ~5% (1 in 20) at any eval-set size.
    confidence: float = 0.95
    # Lower edges of the position slices in the report: 0, 1, 2-4, 5-9, 10+. One slice per
    # slot would be 20 slices, the deep ones too small to read.
    position_buckets: tuple[int, ...] = (0, 1, 2, 5, 10)
    # Examples per serving_default call of the Evaluator (both models score each batch).
    batch_size: int = 1024
    # Evaluate on the eval splits of every span of the training window (as trained),
    # not only the newest span's: more rows, and the same distribution the model fits.
    whole_window: bool = True


@dataclass(frozen=True)
class ValidationSection:
    """Data validation: what stops a run before Transform (components/data_gate.py)."""

    # Stop the run when ExampleValidator or DistributionValidator report an anomaly.
    fail_on_anomalies: bool = True
    # Features compared with the previous span. Empty: every label and numeric feature
    # (Jensen-Shannon divergence) and the device feature (L-infinity distance).
    drift_features: tuple[str, ...] = ()
    # Those of drift_features that are categorical strings (compared by L-infinity distance).
    categorical_drift_features: tuple[str, ...] = ()
    # Largest Jensen-Shannon divergence between the previous and the new span's histograms:
    # for binary labels and presence flags, and for continuous labels and numeric inputs.
    # Measured on two simulated days of 4,000 impressions, day to day: binary labels
    # 0.0001-0.0003, continuous labels and numeric inputs 0.002-0.04; a day on which four
    # requests in five lost their events: click 0.04, like 0.018, rating 0.11, watch time 0.43.
    max_label_drift: float = 0.01
    max_feature_drift: float = 0.1
    # Largest L-infinity distance between the previous and the new span's value shares.
    max_categorical_drift: float = 0.1
    # Bounds on (examples in the new span) / (examples in the previous span).
    min_examples_fraction: float = 0.2
    max_examples_fraction: float = 5.0
    # Fraction of examples StatisticsGen (both the new span's and yesterday's) reads, via
    # TFDV's StatsOptions.sample_rate: statistics cost one Python pass per example, which
    # is minutes per 1M examples on DirectRunner. 1.0 (the default): every example, exact
    # statistics as before. Below 1 the histograms, example counts and vocabularies are
    # those of a uniform sample (the drift check compares like with like: both spans are
    # sampled at the same rate); SchemaGen's inferred domains may then miss rare values.
    statistics_sample_rate: float = 1.0


@dataclass(frozen=True)
class ServingSection:
    """Where and how the blessed model is pushed."""

    model_name: str = "watchnext"
    # Empty: <pipeline.output_dir>/serving.
    serving_dir: str = ""
    keep_versions: int = 5


# Tuner search algorithms (keras-tuner oracles) and objectives (models/tuner.py).
TUNING_ALGORITHMS = ("random", "bayesian")
TUNING_OBJECTIVES = ("mean_auc", "weighted_loss")
# The search space: each is a TuningSection field listing the values to try, and the name
# of the hyperparameter the Tuner hands the Trainer (models/tuner.apply_hyperparameters).
TUNED_HYPERPARAMETERS = ("num_experts", "expert_width", "learning_rate", "gate_dropout")


@dataclass(frozen=True)
class TuningSection:
    """TFX's Tuner before the Trainer: a small hyperparameter search whose best values train the model.

    Off by default: each trial trains a model from scratch, so a search costs about
    max_trials × train_steps Trainer steps, and it reruns whenever the transformed examples
    change (every new span). Objectives, both measured on the eval split after a trial:
    mean_auc (maximized): the mean AUC of the binary heads, what the Evaluator's blessing
    thresholds are about, scale-free across heads; weighted_loss (minimized): Σ_k
    loss_weight_k × (head k's eval loss averaged over the eval batches), the training
    objective itself, which includes the regression heads.
    """

    enabled: bool = False
    algorithm: Literal["random", "bayesian"] = "random"
    objective: Literal["mean_auc", "weighted_loss"] = "mean_auc"
    # Budget: trials, and Trainer steps per trial (training.batch_size examples per step).
    max_trials: int = 4
    train_steps: int = 300
    eval_steps: int = 50
    # The search space (values to choose from). expert_width sets every layer of
    # model.expert_units; num_experts and gate_dropout are searched only by architectures
    # with experts and gates (mmoe, omoe, cgc, ple; cgc/ple: the shared experts).
    num_experts: tuple[int, ...] = (2, 4, 8)
    expert_width: tuple[int, ...] = (16, 32, 64)
    learning_rate: tuple[float, ...] = (0.001, 0.003, 0.01)
    gate_dropout: tuple[float, ...] = (0.0, 0.1, 0.2)


@dataclass(frozen=True)
class Config:
    """The whole of watchnext's configuration."""

    pipeline: PipelineSection = field(default_factory=PipelineSection)
    data: DataSection = field(default_factory=DataSection)
    features: FeaturesSection = field(default_factory=FeaturesSection)
    heads: tuple[Head, ...] = DEFAULT_HEADS
    model: ModelSection = field(default_factory=ModelSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    validation: ValidationSection = field(default_factory=ValidationSection)
    serving: ServingSection = field(default_factory=ServingSection)
    tuning: TuningSection = field(default_factory=TuningSection)

    # -- derived names -----------------------------------------------------
    @property
    def head_names(self) -> list[str]:
        return [h.name for h in self.heads]

    def head(self, name: str) -> Head:
        for h in self.heads:
            if h.name == name:
                return h
        raise KeyError(f"no head named {name!r}; heads are {self.head_names}")

    @property
    def label_keys(self) -> list[str]:
        """Every label-like column: labels and presence indicators (never model inputs)."""
        keys = [h.label for h in self.heads] + [h.presence for h in self.heads if h.presence]
        return list(dict.fromkeys(keys))

    @property
    def derived_labels(self) -> dict[str, LabelFrom]:
        """{label column: rule} of the heads whose label a table's ExampleGen derives."""
        return {h.label: h.label_from for h in self.heads if h.label_from.column}

    @property
    def table_numeric_columns(self) -> list[str]:
        """Columns a table's ExampleGen parses as numbers: numeric features and the label and
        presence columns read as they are. Every other column stays a string."""
        derived = self.derived_labels
        names = list(self.features.numeric) + [k for k in self.label_keys if k not in derived]
        return list(dict.fromkeys(names))

    @property
    def data_path(self) -> str:
        """Where the data are: the logs folder, or the table's CSV file or glob."""
        return self.data.table.path if self.data.source == "table" else self.data.logs_dir

    def with_data_path(self, path: str) -> Config:
        """A copy reading the data at `path` (what `--logs` sets, for either source)."""
        d = self.data
        data = (dataclasses.replace(d, table=dataclasses.replace(d.table, path=path))
                if d.source == "table" else dataclasses.replace(d, logs_dir=path))
        return self.replace(data=data)

    @property
    def serving_dir(self) -> str:
        return self.serving.serving_dir or os.path.join(self.pipeline.output_dir, "serving")

    # -- (de)serialization ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return from_dict(json.loads(text), source="<json>")

    def replace(self, **sections: Any) -> Config:
        """A copy with whole sections replaced (`cfg.replace(training=...)`)."""
        new = dataclasses.replace(self, **sections)
        new.validate()
        return new

    def validate(self) -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        _check(re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.pipeline.name) is not None,
               "pipeline.name", f"{self.pipeline.name!r} must match [a-z0-9][a-z0-9-]* "
               "(Kubeflow pipeline names)")
        _one_of(self.model.architecture, ARCHITECTURES, "model.architecture")
        _one_of(self.model.position_mode, POSITION_MODES, "model.position_mode")
        for rate_key in ("gate_dropout", "position_dropout"):
            rate = getattr(self.model, rate_key)
            _check(0.0 <= rate < 1.0, f"model.{rate_key}", f"{rate} must be in [0, 1)")
        for key in ("shared_hidden_units", "num_experts", "task_experts", "ple_levels"):
            _check(getattr(self.model, key) >= 1, f"model.{key}", "must be >= 1")
        _check(len(self.heads) >= 1, "heads", "at least one head is needed")
        names = self.head_names
        _check(len(set(names)) == len(names), "heads", f"head names repeat: {names}")
        for i, h in enumerate(self.heads):
            where = f"heads[{i}] ({h.name})"
            _check(re.fullmatch(r"[a-z][a-z0-9_]*", h.name) is not None, f"{where}.name",
                   "must be a lower-case identifier (it names a serving output)")
            _check(h.name != "score", f"{where}.name", "'score' is the combined output's name")
            _check(h.type in HEAD_TYPES, f"{where}.type", f"{h.type!r} not in {HEAD_TYPES}")
            _check(h.group in HEAD_GROUPS, f"{where}.group", f"{h.group!r} not in {HEAD_GROUPS}")
            _check(h.label_transform in LABEL_TRANSFORMS, f"{where}.label_transform",
                   f"{h.label_transform!r} not in {LABEL_TRANSFORMS}")
            _check(h.score_form in SCORE_FORMS, f"{where}.score_form",
                   f"{h.score_form!r} not in {SCORE_FORMS}")
            _check(h.loss_weight >= 0, f"{where}.loss_weight", "must be >= 0")
            _check(h.score_form in ({"identity", "complement"} if h.type == "binary"
                                    else {"identity", "log1p"}), f"{where}.score_form",
                   f"{h.score_form!r} does not apply to a {h.type} head")
            _check(not (h.type == "binary" and h.label_transform != "none"),
                   f"{where}.label_transform", "binary heads take their label as is")
            _check(h.presence_loss in PRESENCE_LOSSES, f"{where}.presence_loss",
                   f"{h.presence_loss!r} not in {PRESENCE_LOSSES}")
            _check(h.regression_loss in REGRESSION_LOSSES, f"{where}.regression_loss",
                   f"{h.regression_loss!r} not in {REGRESSION_LOSSES}")
            _check(h.regression_loss == "mse" or h.type == "regression", f"{where}.regression_loss",
                   "applies to regression heads only (binary heads use cross-entropy)")
            _check(h.regression_loss != "weighted_logistic" or h.label_transform == "none",
                   f"{where}.label_transform", "weighted_logistic predicts E[label] in label units; "
                   "it needs label_transform 'none'")
        feats = self.features
        id_names = [f.name for f in feats.ids]
        all_inputs = id_names + list(feats.numeric)
        _check(len(set(all_inputs)) == len(all_inputs), "features", f"names repeat: {all_inputs}")
        for name in feats.log1p_numeric:
            _check(name in feats.numeric, "features.log1p_numeric", f"{name!r} is not in features.numeric")
        self._validate_numeric_embeddings(all_inputs)
        for name in self.label_keys:
            _check(name not in all_inputs, "heads", f"label {name!r} is also a model input")
        if feats.device:
            _check(feats.device in id_names, "features.device",
                   f"{feats.device!r} must be one of features.ids")
        if feats.position:
            _check(feats.position not in all_inputs, "features.position",
                   "position is a bias feature, not a regular input")
        needs = {"shallow_tower": ("position", "device"), "input_feature": ("position",)}
        for key in needs.get(self.model.position_mode, ()):
            _check(bool(getattr(feats, key)), "model.position_mode",
                   f"{self.model.position_mode!r} needs features.{key}, which is empty (data without "
                   "position): set model.position_mode to none")
        _check(feats.max_position >= 1, "features.max_position", "must be >= 1")
        for f in feats.ids:
            _check(f.max_length >= 1, f"features.ids ({f.name}).max_length", "must be >= 1")
        _check(0 < self.data.eval_percent < 100, "data.eval_percent", "must be in (0, 100)")
        _check(self.data.window_spans >= 1, "data.window_spans", "must be >= 1")
        _check(0 <= self.data.max_rejected_fraction <= 1, "data.max_rejected_fraction", "must be in [0, 1]")
        _check(self.training.train_steps >= 0, "training.train_steps", "must be >= 0 (0: derive from epochs)")
        _check(self.training.eval_steps >= 0, "training.eval_steps", "must be >= 0 (0: the whole eval split)")
        _check(self.training.epochs >= 1, "training.epochs", "must be >= 1")
        _check(self.training.validation_interval_steps >= 0, "training.validation_interval_steps",
               "must be >= 0 (0: once per epoch)")
        _check(self.training.early_stopping_patience >= 0, "training.early_stopping_patience",
               "must be >= 0 (0: no early stopping)")
        _check(self.training.early_stopping_min_delta >= 0, "training.early_stopping_min_delta",
               "must be >= 0")
        _check(self.training.prior_bias_batches >= 0, "training.prior_bias_batches", "must be >= 0")
        _check(self.training.batch_size >= 1, "training.batch_size", "must be >= 1")
        _check(self.serving.keep_versions >= 1, "serving.keep_versions", "must be >= 1")
        _one_of(self.training.distribution, DISTRIBUTIONS, "training.distribution")
        self._validate_vertex_training()
        self._validate_data(all_inputs)
        e = self.evaluation
        _check(0 < e.polarized_gate_weight < 1, "evaluation.polarized_gate_weight", "must be in (0, 1)")
        _check(0 <= e.max_polarized_share <= 1, "evaluation.max_polarized_share", "must be in [0, 1]")
        _check(0.5 <= e.confidence < 1, "evaluation.confidence", "must be in [0.5, 1)")
        _check(e.max_auc_drop >= 0, "evaluation.max_auc_drop", "must be >= 0")
        _check(e.max_mse_increase_ratio >= 0, "evaluation.max_mse_increase_ratio", "must be >= 0")
        _check(e.batch_size >= 1, "evaluation.batch_size", "must be >= 1")
        b = e.position_buckets
        _check(bool(b) and b[0] == 0 and list(b) == sorted(set(b)), "evaluation.position_buckets",
               "must start at 0 and increase")
        v = self.validation
        _check(v.max_label_drift > 0, "validation.max_label_drift", "must be > 0")
        _check(v.max_feature_drift > 0, "validation.max_feature_drift", "must be > 0")
        _check(v.max_categorical_drift > 0, "validation.max_categorical_drift", "must be > 0")
        _check(0 < v.statistics_sample_rate <= 1, "validation.statistics_sample_rate", "must be in (0, 1]")
        _check(0 <= v.min_examples_fraction <= 1 <= v.max_examples_fraction, "validation",
               "needs min_examples_fraction <= 1 <= max_examples_fraction")
        for name in v.categorical_drift_features:
            _check(name in v.drift_features or not v.drift_features, "validation.categorical_drift_features",
                   f"{name!r} is not in validation.drift_features")
        self._validate_beam()
        self._validate_tuning()

    def _validate_numeric_embeddings(self, inputs: list[str]) -> None:
        feats = self.features
        names = [e.name for e in feats.numeric_embeddings]
        taken = set(inputs) | set(self.label_keys) | {feats.position}
        for i, e in enumerate(feats.numeric_embeddings):
            where = f"features.numeric_embeddings[{i}] ({e.name})"
            _check(e.name in feats.numeric, f"{where}.name", f"{e.name!r} is not in features.numeric")
            _check(e.name not in names[:i], f"{where}.name", "listed more than once")
            _one_of(e.encoding, NUMERIC_ENCODINGS, f"{where}.encoding")
            _check(e.buckets >= 2, f"{where}.buckets", f"{e.buckets} must be >= 2")
            _check(e.embedding_dim >= 1, f"{where}.embedding_dim", f"{e.embedding_dim} must be >= 1")
            _check(e.output_key not in taken, f"{where}.name",
                   f"its encoding's output {e.output_key!r} is already a feature or label name")

    def _validate_vertex_training(self) -> None:
        t = self.training
        _check(t.vertex_workers >= 0, "training.vertex_workers", "must be >= 0 (0: no Vertex AI job)")
        if t.vertex_workers:
            for key in ("vertex_project", "vertex_region", "vertex_machine_type"):
                _check(bool(getattr(t, key)), f"training.{key}", "is needed when training.vertex_workers > 0")
        _check(t.vertex_workers <= 1 or t.distribution == "multi_worker_mirrored", "training.distribution",
               f"must be multi_worker_mirrored for training.vertex_workers {t.vertex_workers} (> 1): "
               "otherwise every replica would train alone")

    def _validate_data(self, inputs: list[str]) -> None:
        """The data source, the table's columns and splits, and the heads' derived labels."""
        d, t = self.data, self.data.table
        _one_of(d.source, DATA_SOURCES, "data.source")
        for i, h in enumerate(self.heads):
            rule, where = h.label_from, f"heads[{i}] ({h.name}).label_from"
            if not (rule.column or rule.positive_values):
                continue
            _check(d.source == "table", where, "labels are derived while reading a table: needs "
                   "data.source table (LogExampleGen computes the log labels itself)")
            _check(bool(rule.column), f"{where}.column", "must name the raw column the label comes from")
            _check(bool(rule.positive_values), f"{where}.positive_values",
                   "must list at least one value that means label 1")
            _check(h.type == "binary", where,
                   f"derives a 0/1 label, so the head must be binary, not {h.type}")
            _check(rule.column not in inputs, f"{where}.column",
                   f"{rule.column!r} is also a model input: the label would leak into the features")
        if d.source != "table":
            return
        _check(d.window_spans == 1, "data.window_spans", "a table has no daily spans: must be 1")
        _check(t.train_percent > 0 and t.eval_percent > 0 and t.test_percent >= 0, "data.table",
               "train_percent and eval_percent must be > 0 and test_percent >= 0")
        total = t.train_percent + t.eval_percent + t.test_percent
        _check(total == 100, "data.table", f"train_percent + eval_percent + test_percent is {total}, not 100")
        _check(len(t.delimiter) == 1, "data.table.delimiter", f"{t.delimiter!r} must be one character")
        _check(len(set(t.columns)) == len(t.columns), "data.table.columns",
               f"names repeat: {list(t.columns)}")
        if not t.columns:
            return  # names come from each file's header row, checked while reading
        derived = self.derived_labels
        used = {"features.ids": [f.name for f in self.features.ids],
                "features.numeric": self.features.numeric,
                "features.slices": self.features.slices,
                "heads (labels)": [k for k in self.label_keys if k not in derived],
                "heads (label_from.column)": [r.column for r in derived.values()]}
        for key, names in used.items():
            for name in names:
                _check(name in t.columns, key, f"{name!r} is not one of data.table.columns")
        for label, rule in derived.items():
            _check(label not in t.columns or label == rule.column, "heads",
                   f"derived label {label!r} is also a column of the table: name the head's label otherwise")

    def _validate_tuning(self) -> None:
        t = self.tuning
        _one_of(t.algorithm, TUNING_ALGORITHMS, "tuning.algorithm")
        _one_of(t.objective, TUNING_OBJECTIVES, "tuning.objective")
        _check(t.objective != "mean_auc" or any(h.type == "binary" for h in self.heads),
               "tuning.objective", "mean_auc needs at least one binary head; use weighted_loss")
        for key in ("max_trials", "train_steps", "eval_steps"):
            _check(getattr(t, key) >= 1, f"tuning.{key}", "must be >= 1")
        for key in TUNED_HYPERPARAMETERS:
            values = getattr(t, key)
            _check(len(values) >= 1, f"tuning.{key}", "needs at least one value to try")
            _check(len(set(values)) == len(values), f"tuning.{key}", f"values repeat: {list(values)}")
        _check(all(n >= 1 for n in t.num_experts), "tuning.num_experts", "every value must be >= 1")
        _check(all(w >= 1 for w in t.expert_width), "tuning.expert_width", "every value must be >= 1")
        _check(all(0.0 < r < float("inf") for r in t.learning_rate), "tuning.learning_rate",
               "every value must be a finite number > 0")
        _check(all(0.0 <= r < 1.0 for r in t.gate_dropout), "tuning.gate_dropout",
               "every value must be in [0, 1)")

    def _validate_beam(self) -> None:
        p = self.pipeline
        _one_of(p.beam_preset, BEAM_PRESETS, "pipeline.beam_preset")
        _one_of(p.beam_environment_type, BEAM_ENVIRONMENT_TYPES, "pipeline.beam_environment_type")
        _check(p.beam_workers >= 1, "pipeline.beam_workers", "must be >= 1")
        _check(p.beam_job_server_timeout >= 1, "pipeline.beam_job_server_timeout", "must be >= 1 (seconds)")
        if p.beam_preset == "dataflow":
            for key in ("dataflow_project", "dataflow_region", "dataflow_temp_location"):
                _check(bool(getattr(p, key)), f"pipeline.{key}", "is needed by beam_preset dataflow")
            _check(p.dataflow_temp_location.startswith("gs://"), "pipeline.dataflow_temp_location",
                   f"{p.dataflow_temp_location!r} must be a gs:// folder")
        if p.beam_preset in ("flink", "spark"):
            _check(bool(p.beam_job_endpoint), "pipeline.beam_job_endpoint",
                   f"is needed by beam_preset {p.beam_preset} (the job server's host:port)")
            _check(p.beam_environment_type != "PROCESS" or bool(p.beam_environment_config),
                   "pipeline.beam_environment_config", "is needed by beam_environment_type PROCESS")


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key {key}: {message}")


def _one_of(value: Any, allowed: tuple[str, ...], key: str) -> None:
    _check(value in allowed, key, f"{value!r} is not one of {allowed}")


# ---------------------------------------------------------------------------
# Loading.


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Convert a YAML/JSON value to the annotated type, or raise naming `path`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key {path}: expected a mapping, got {type(value).__name__}")
        return _build(hint, value, path, base=None)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {path}: expected a list, got {type(value).__name__}")
        item = args[0]
        return tuple(_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key {path}: {value!r} is not one of {list(args)}")
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _coerce(value, arg, path)
            except ConfigError:
                continue
        raise ConfigError(f"config key {path}: {value!r} does not fit {hint}")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {path}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {path}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: Any, values: dict[str, Any], path: str, base: Any) -> Any:
    """Build dataclass `cls` from `values`, starting from `base` (or defaults)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"config key {where}: unknown key{hint}; known keys: {', '.join(names)}")
        sub_base = getattr(base, key) if base is not None else None
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict) and sub_base is not None:
            kwargs[key] = _build(hints[key], value, where, sub_base)
        else:
            kwargs[key] = _coerce(value, hints[key], where)
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"config key {path or '<root>'}: {e}") from None


def from_dict(values: dict[str, Any], source: str = "<dict>") -> Config:
    """Merge `values` onto the defaults and validate. Lists replace lists whole."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        cfg = _build(Config, values, "", base=Config())
        cfg.validate()
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return cfg


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the defaults, a YAML file over them (if given), then `overrides`."""
    import yaml  # installed with tfx

    values: dict[str, Any] = {}
    source = "<defaults>"
    if path:
        source = path
        try:
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
        values = loaded or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    if overrides:
        values = _deep_merge(values, overrides)
    return from_dict(values, source=source)


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
