"""Census-Income (KDD) through the whole pipeline: the MMoE paper's real-data benchmark.

Ma et al. (KDD 2018, §6.3) train on UCI Census-Income with two task groups: (1) income
> 50K and marital status = never married, (2) education at college level or above and
never married, with education and marital status removed from the inputs. Here only the
public 99,762-row test file is available, so the table's ExampleGen splits it 50/25/25
(train/eval/test) by a hash seeded with `data.table.split_seed`; the figures are
comparable in range to the paper's, not identical (less training data, another split).

Every training is a real pipeline run of `configs/census_income.yaml` (`create_pipeline`
on LocalDagRunner, as `watchnext run` runs it, up to the Trainer: see SKIPPED_COMPONENTS),
with only the heads (group 2), the architecture, the numeric encoding and `training.seed`
changed; warm start is off so seeds are independent. TableExampleGen, StatisticsGen, SchemaGen
and Transform are cache hits after the first run of each group and encoding.
A numeric encoding other than "none" (`Sizes.numeric_encodings`) is an arm of its own: every
numeric feature also enters through `features.numeric_embeddings` with that encoding (16
quantile bins, 4-wide, the z-scored value kept), as in Gorishniy et al. (2022).
Each trained model's test AUC comes from its exported `serving_default` signature on the
raw tf.Examples of the test split, which neither training nor the Evaluator saw.
Beside it, sklearn's HistGradientBoostingClassifier (the reference a tabular user compares
with first) is fitted on the train split of the same Examples artifact and scored on the same
test rows, so the two rows of the table compare like for like.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import watchnext
from bench import common
from bench.report import BenchmarkResult, Plot, Table, fmt, mean_sd
from watchnext.core.config import NUMERIC_ENCODINGS, Config, LabelFrom, NumericEmbedding, load_config
from watchnext.pipeline import oracle_scores

import numpy as np

NAME = "census"
CONFIG_FILE = Path(watchnext.__file__).parent / "configs" / "census_income.yaml"
# Group 2's first task: a degree at bachelor's level or above (the four values of the
# education column that name such a degree; "Some college but no degree" and associate
# degrees count as 0).
COLLEGE_DEGREES = ("Bachelors degree(BA AB BS)", "Masters degree(MA MS MEng MEd MSW MBA)",
                   "Prof school degree (MD DDS DVM LLB JD)", "Doctorate degree(PhD EdD)")
COLLEGE_HEAD = "college"
# Test AUCs to read ours beside (task → architecture → {"best", "mean"}), group 1 only:
# the MMoE paper (§6.3; trained on the 199,523-row .data file) and DeepCTR 0.9.4 on a
# 50/25/25 split of the test file (its README: 5 seeds, mean ± sd; marital as reported).
PAPER = {"income": {"mmoe": {"best": 0.9410, "mean": 0.9359},
                    "shared_bottom": {"best": 0.9361, "mean": 0.9295}},
         "never_married": {"mmoe": {"best": 0.9926}, "shared_bottom": {"best": 0.9915}}}
DEEPCTR = {"income": {"mmoe": "0.9418 ± 0.0007", "shared_bottom": "0.9414", "ple": "0.9422"},
           "never_married": {"mmoe": "0.9940", "shared_bottom": "0.9940", "ple": "0.9939"}}

log = logging.getLogger("watchnext.benchmarks")
# The numeric encoding arm that leaves the config's features as written.
NO_ENCODING = "none"


@dataclass(frozen=True)
class Sizes:
    seeds: int
    steps: int
    groups: tuple[int, ...] = (1, 2)
    architectures: tuple[str, ...] = ("mmoe", "shared_bottom")
    batch_size: int = 512
    # 0: every row of the file; otherwise only its first `rows` rows (quick, smoke).
    rows: int = 0
    # Arms by how numeric features enter: "none" is the config as written; "piecewise_linear" or
    # "buckets" adds that features.numeric_embeddings entry for every numeric feature.
    numeric_encodings: tuple[str, ...] = (NO_ENCODING,)


SIZES = {
    "smoke": Sizes(seeds=1, steps=5, groups=(1,), architectures=("mmoe",), batch_size=64, rows=600,
                   numeric_encodings=(NO_ENCODING, "piecewise_linear")),
    # The first 20,000 rows (10k train): Transform's 31 vocabularies on all rows take 6-11 min here.
    "quick": Sizes(seeds=1, steps=300, groups=(1,), rows=20000),
    # 2 groups x 2 architectures x 2 numeric encodings x 5 seeds: 40 trainings. The published
    # run narrows it with `--groups 1 --architectures mmoe` (10 trainings).
    "full": Sizes(seeds=5, steps=1000, numeric_encodings=(NO_ENCODING, "piecewise_linear")),
}


def arm(architecture: str, encoding: str) -> str:
    """A row's name: the architecture, and the numeric encoding unless it is the config's own."""
    return architecture if encoding == NO_ENCODING else f"{architecture} + {encoding} numeric"


def with_numeric_encoding(config: Config, encoding: str) -> Config:
    """The config as written ("none"), or with every numeric feature also embedded by `encoding`."""
    if encoding == NO_ENCODING:
        return config
    if encoding not in NUMERIC_ENCODINGS:
        raise ValueError(f"census: numeric encoding {encoding!r}: one of {(NO_ENCODING, *NUMERIC_ENCODINGS)}")
    embeddings = tuple(NumericEmbedding(name, encoding=encoding) for name in config.features.numeric)
    return config.replace(features=dataclasses.replace(config.features, numeric_embeddings=embeddings))


def group_config(base: Config, group: int) -> Config:
    """Group 1 is the config's own heads (income, never married); group 2 swaps income for college."""
    if group == 1:
        return base
    income, married = base.head("income"), base.head("never_married")
    college = dataclasses.replace(income, name=COLLEGE_HEAD, label=COLLEGE_HEAD,
                                  label_from=LabelFrom("education", COLLEGE_DEGREES))
    return base.replace(heads=(college, married))


def run_config(base: Config, group: int, architecture: str, seed: int, sizes: Sizes,
               output_dir: str, encoding: str = NO_ENCODING) -> Config:
    """One training's config: the group's heads, the encoding, the architecture, the seed, the sizes;
    no warm start."""
    config = with_numeric_encoding(group_config(base, group), encoding)
    return config.replace(
        pipeline=dataclasses.replace(config.pipeline, output_dir=output_dir),
        model=dataclasses.replace(config.model, architecture=architecture),
        training=dataclasses.replace(config.training, seed=seed, train_steps=sizes.steps,
                                     batch_size=sizes.batch_size, warm_start=False))


def data_file(context: common.Context, sizes: Sizes) -> str:
    """The census file named by `--data`; its first `sizes.rows` rows for smoke and quick."""
    path = context.data_path
    if not path:
        raise FileNotFoundError("census: no data given: pass `python -m bench census --data PATH` with the "
                                "UCI Census-Income (KDD) file census-income.test.gz (42 columns, no header)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"census: no data at {path}: pass `python -m bench census --data PATH` "
                                "with the UCI Census-Income (KDD) file census-income.test.gz (42 columns, "
                                "no header)")
    if not sizes.rows:
        return path
    sample = os.path.join(context.work_dir, f"census-first-{sizes.rows}.csv.gz")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [line for _, line in zip(range(sizes.rows), f, strict=False)]
    with gzip.open(sample, "wt", encoding="utf-8") as f:
        f.writelines(lines)
    return sample


# ---------------------------------------------------------------------------
# Finding what a run produced in ML Metadata.


def trained_model(metadata_path: str, config: Config) -> tuple[str, str]:
    """(serving model dir, raw Examples uri) of the newest Trainer run with exactly `config`.

    Matched by the config JSON in the Trainer's custom_config, so a cached Trainer (a rerun
    with a persistent work dir) is found as well as a fresh one; the raw examples are found
    through the lineage Trainer ← Transform ← ExampleGen.
    """
    from watchnext.core.contract import CONFIG_KEY
    from watchnext.pipeline import metadata
    from watchnext.pipeline.cache_keys import trainer_view

    store = metadata.open_metadata(metadata_path)
    wanted = trainer_view(config).to_json()  # what create_pipeline hands the Trainer
    try:
        trainer = metadata.newest_execution_with_config(store, "Trainer", CONFIG_KEY, wanted)
    except LookupError:
        raise LookupError(f"no Trainer execution with this config in {metadata_path}") from None
    model = metadata.linked_artifact(store, trainer.id, "Model", output=True)
    transformed = metadata.linked_artifact(store, trainer.id, "Examples", output=False)
    transform = metadata.producer(store, transformed.id)
    raw = metadata.linked_artifact(store, transform, "Examples", output=False)
    return os.path.join(model.uri, "Format-Serving"), raw.uri


# ---------------------------------------------------------------------------
# Scoring the held-out test split as served.


def test_split(examples_uri: str, labels: list[str]) -> tuple[list[bytes], dict[str, np.ndarray]]:
    """Serialized raw tf.Examples of the test split and their (derived) labels."""
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_uri, "Split-test", "*")))
    if not files:
        raise FileNotFoundError(f"no test split under {examples_uri}: data.table.test_percent must be > 0")
    records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    spec = {name: tf.io.FixedLenFeature([], tf.int64) for name in labels}
    parsed = tf.io.parse_example(tf.constant(records), spec)
    return records, {name: parsed[name].numpy() for name in labels}


def serve_scores(model_dir: str, records: list[bytes], heads: list[str], batch_size: int = 4096
                 ) -> dict[str, np.ndarray]:
    """Each head's prediction from the exported serving_default signature (raw tf.Examples in)."""
    from watchnext.models.export import EXAMPLES_INPUT, SERVING_SIGNATURE

    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures[SERVING_SIGNATURE]
    parts: dict[str, list[np.ndarray]] = {h: [] for h in heads}
    for start in range(0, len(records), batch_size):
        out = serve(**{EXAMPLES_INPUT: tf.constant(records[start:start + batch_size])})
        for h in heads:
            parts[h].append(np.reshape(out[h].numpy(), [-1]))
    return {h: np.concatenate(parts[h]) for h in heads}


def auc_standard_error(auc: float, labels: np.ndarray) -> float:
    """Hanley & McNeil's (1982) standard error of an AUC on this test sample (its sampling noise)."""
    positives = int(np.sum(labels > 0))
    negatives = len(labels) - positives
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    return float(math.sqrt(max(variance, 0.0)))


# ---------------------------------------------------------------------------
# Gradient-boosted trees on the same rows: the reference a tabular user compares with first.

# sklearn's HistGradientBoostingClassifier as the data README's reference runs it: 500 rounds
# at learning rate 0.05, stopped early on a random 20% of the train split (by the seed).
GBDT_PARAMS = {"max_iter": 500, "learning_rate": 0.05, "early_stopping": True, "validation_fraction": 0.2}
# Native categorical splits take integer codes below max_bins (255): a column's most frequent
# 255 train values get codes, rarer ones and values unseen in train are "missing" (NaN).
GBDT_MAX_CATEGORIES = 255


def table_split(examples_uri: str, split: str, config: Config
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A split of TableExampleGen's raw Examples as columns: the model inputs and the heads' labels."""
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise FileNotFoundError(f"no {split} split under {examples_uri}")
    spec = {f.name: tf.io.FixedLenFeature([], tf.string, default_value=b"") for f in config.features.ids}
    spec.update({name: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan"))
                 for name in config.features.numeric})
    spec.update({h: tf.io.FixedLenFeature([], tf.int64) for h in config.head_names})
    columns: dict[str, list[np.ndarray]] = {name: [] for name in spec}
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192):
        parsed = tf.io.parse_example(batch, spec)
        for name in spec:
            columns[name].append(parsed[name].numpy())
    data = {name: np.concatenate(parts) for name, parts in columns.items()}
    return ({name: data[name] for name in spec if name not in config.head_names},
            {h: data[h] for h in config.head_names})


def gbdt_matrix(train: dict[str, np.ndarray], test: dict[str, np.ndarray], config: Config
                ) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """(train X, test X, categorical mask): id columns as codes fitted on train, numeric columns raw.

    Trees split on order, so the numeric columns need neither log1p nor a z-score.
    """
    train_cols, test_cols, categorical = [], [], []
    for f in config.features.ids:
        values, counts = np.unique(train[f.name], return_counts=True)
        kept = values[np.argsort(-counts, kind="stable")[:GBDT_MAX_CATEGORIES]]
        codes = {v: float(i) for i, v in enumerate(kept)}
        for source, out in ((train, train_cols), (test, test_cols)):
            out.append(np.array([codes.get(v, np.nan) for v in source[f.name]]))
        categorical.append(True)
    for name in config.features.numeric:
        train_cols.append(train[name].astype(np.float64))
        test_cols.append(test[name].astype(np.float64))
        categorical.append(False)
    return np.stack(train_cols, axis=1), np.stack(test_cols, axis=1), categorical


def gbdt_test_auc(examples_uri: str, config: Config, seeds: int) -> list[dict[str, Any]]:
    """HistGradientBoosting per head and seed, trained on the train split, scored on the test split."""
    import time

    from sklearn.ensemble import HistGradientBoostingClassifier  # the benchmark's own dependency

    train, train_labels = table_split(examples_uri, "train", config)
    test, test_labels = table_split(examples_uri, "test", config)
    x_train, x_test, categorical = gbdt_matrix(train, test, config)
    runs = []
    for seed in range(seeds):
        auc, iterations, t0 = {}, {}, time.time()
        for head in config.head_names:
            model = HistGradientBoostingClassifier(**GBDT_PARAMS, categorical_features=categorical,
                                                   random_state=seed)
            model.fit(x_train, train_labels[head])
            auc[head] = oracle_scores.auc(model.predict_proba(x_test)[:, 1], test_labels[head])
            iterations[head] = int(model.n_iter_)
        log.info("census: GBDT seed %d: test AUC %s", seed, {h: round(v, 4) for h, v in auc.items()})
        runs.append({"seed": seed, "test_auc": auc, "iterations": iterations, "seconds": time.time() - t0,
                     "train_examples": len(x_train), "test_examples": len(x_test)})
    return runs


# ---------------------------------------------------------------------------
# Synthetic rows in the census format (tests; the smoke run when the real file is absent).

COLUMNS_NUMERIC_VALUES = {"age": (0, 90), "wage_per_hour": (0, 2000), "capital_gains": (0, 20000),
                          "capital_losses": (0, 3000), "stock_dividends": (0, 5000), "num_emp": (0, 6),
                          "weeks_worked": (0, 52)}


def synthetic_census(path: str, rows: int, seed: int = 0) -> str:
    """Write `rows` header-less census-format rows (42 columns, ", " separated, gzip'd) to `path`.

    The values are made up but the labels depend on the inputs (income on age and weeks
    worked, marital status on age, education on age and class of worker), so a model
    learns something; every categorical column has a few values.
    """
    base = load_config(str(CONFIG_FILE))
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(rows):
        age = int(rng.integers(0, 90))
        weeks = int(rng.integers(0, 53)) if age >= 16 else 0
        row: dict[str, str] = {name: str(int(rng.integers(lo, hi + 1))) for name, (lo, hi)
                               in COLUMNS_NUMERIC_VALUES.items()}
        row.update(age=str(age), weeks_worked=str(weeks))
        for f in base.features.ids:
            row[f.name] = f"{f.name}-{int(rng.integers(0, 4))}"
        worker = "Private" if rng.random() < 0.5 else "Not in universe"
        row["class_worker"] = worker
        college = age > 22 and rng.random() < (0.5 if worker == "Private" else 0.1)
        row["education"] = COLLEGE_DEGREES[0] if college else "High school graduate"
        row["marital_stat"] = "Never married" if age < 25 or rng.random() < 0.1 else "Divorced"
        rich = weeks > 40 and age > 30 and rng.random() < 0.5
        row["income_50k"] = "50000+." if rich else "- 50000."
        row["instance_weight"] = f"{rng.uniform(100, 3000):.2f}"
        lines.append(", ".join(row[c] for c in base.data.table.columns))
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------
# The benchmark.


# Left out of the benchmark's pipeline: the test-split AUC below is the measurement, and the
# Evaluator (TFMA on the eval split, candidate and baseline model) cost more than the Trainer
# itself (220 s vs 199 s in one `watchnext run` of this config on this machine).
SKIPPED_COMPONENTS = ("Evaluator", "Pusher")


def run_pipeline(config: Config, data: str) -> tuple[float, dict[str, float]]:
    """`create_pipeline(config)` up to the Trainer, run by LocalDagRunner as `watchnext run` runs it.

    Returns the wall seconds and each component's seconds.
    """

    from watchnext.pipeline import beam, local_runner
    from watchnext.pipeline.output_lock import output_lock
    from watchnext.pipeline.pipeline import create_pipeline

    from tfx import v1 as tfx

    paths = local_runner.RunPaths(config.pipeline.output_dir)
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(paths.metadata_path)
    full = create_pipeline(config, logs_dir=data, pipeline_root=paths.pipeline_root,
                           metadata_connection_config=metadata)
    skipped = [c for c in full.components if c.id in SKIPPED_COMPONENTS]
    kept = [c for c in full.components if c.id not in SKIPPED_COMPONENTS]
    for node in kept:
        for gone in skipped:
            if gone in node.downstream_nodes:
                node.remove_downstream_node(gone)
    pipeline = tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name, pipeline_root=paths.pipeline_root, components=kept,
        enable_cache=config.pipeline.enable_cache, metadata_connection_config=metadata,
        beam_pipeline_args=beam.beam_pipeline_args(config))
    with output_lock(config.pipeline.output_dir):
        return local_runner.run_with_progress(pipeline)


RUNS_FILE = "census_runs.json"
# A run whose test AUC is this far below its architecture's median is named in the notes.
OUTLIER_AUC_GAP = 0.02


def finished_runs(path: str, sizes: Sizes, data: str) -> dict[tuple[int, str, str, int], dict[str, Any]]:
    """Runs an earlier, interrupted invocation with the same sizes and data already finished.

    A --full run takes an hour or more on a shared machine; each finished training is kept
    in `<work dir>/census_runs.json`, so running the benchmark again with the same
    `--work-dir` continues where it stopped instead of starting over.
    """
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    same = (saved.get("sizes") == json.loads(json.dumps(dataclasses.asdict(sizes)))
            and saved.get("data") == data)
    return {(r["group"], r.get("numeric_encoding", NO_ENCODING), r["architecture"], r["seed"]): r
            for r in saved["runs"]} if same else {}


def check_sizes(sizes: Sizes) -> None:
    """Refuse a group or numeric encoding the benchmark has no meaning for, before any run."""
    if not sizes.groups or set(sizes.groups) - {1, 2}:
        raise ValueError(f"census: groups {sizes.groups}: each 1 (income, never married) or 2 (college, "
                         "never married)")
    encodings = (NO_ENCODING, *NUMERIC_ENCODINGS)
    if not sizes.numeric_encodings or set(sizes.numeric_encodings) - set(encodings):
        raise ValueError(f"census: numeric_encodings {sizes.numeric_encodings}: each one of {encodings}")


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    check_sizes(sizes)
    data = data_file(context, sizes)
    base = load_config(str(CONFIG_FILE))
    output_dir = os.path.join(context.work_dir, "census_output")
    metadata_path = os.path.join(output_dir, "metadata.sqlite")
    runs_path = os.path.join(context.work_dir, RUNS_FILE)
    finished = finished_runs(runs_path, sizes, data)
    runs: list[dict[str, Any]] = []
    test_labels: dict[int, dict[str, np.ndarray]] = {}
    examples: dict[int, tuple[str, Config]] = {}  # each group's raw Examples (its labels differ)
    # Every arm shares one output dir: an encoding changes Transform's cache key, not ExampleGen's.
    for group in sizes.groups:
        for encoding in sizes.numeric_encodings:
            for architecture in sizes.architectures:
                for seed in range(sizes.seeds):
                    config = run_config(base, group, architecture, seed, sizes, output_dir, encoding)
                    name = f"group {group}, {arm(architecture, encoding)}, seed {seed}"
                    earlier = finished.get((group, encoding, architecture, seed))
                    if earlier is not None:
                        log.info("census: %s: finished by an earlier invocation", name)
                        runs.append({**earlier, "resumed": True})
                        if group not in test_labels:
                            examples[group] = (trained_model(metadata_path, config)[1], config)
                            test_labels[group] = test_split(examples[group][0], config.head_names)[1]
                        continue
                    log.info("census: %s", name)
                    seconds, component_seconds = run_pipeline(config, data)
                    model_dir, examples_uri = trained_model(metadata_path, config)
                    examples[group] = (examples_uri, config)
                    records, labels = test_split(examples_uri, config.head_names)
                    test_labels[group] = labels
                    scores = serve_scores(model_dir, records, config.head_names)
                    auc = {h: oracle_scores.auc(scores[h], labels[h]) for h in config.head_names}
                    log.info("census: %s: test AUC %s (%.0f s)", name,
                             {h: round(v, 4) for h, v in auc.items()}, seconds)
                    runs.append({"group": group, "architecture": architecture, "numeric_encoding": encoding,
                                 "seed": seed, "test_auc": auc, "pipeline_seconds": seconds,
                                 "component_seconds": component_seconds, "model": model_dir})
                    with open(runs_path, "w", encoding="utf-8") as f:
                        json.dump({"sizes": dataclasses.asdict(sizes), "data": data,
                                   "runs": [r for r in runs if not r.get("resumed")]
                                   + list(finished.values())}, f, indent=1)
    # GBDT on exactly the rows TableExampleGen wrote (the same for every arm of a group): trained
    # on the train split, scored on the test split.
    gbdt = [{"group": group, **r} for group, (uri, config) in examples.items()
            for r in gbdt_test_auc(uri, config, sizes.seeds)]
    return _result(sizes, data, base, runs, test_labels, gbdt)


def _heads(group: int) -> list[str]:
    return ["income", "never_married"] if group == 1 else [COLLEGE_HEAD, "never_married"]


def _arms(sizes: Sizes) -> list[tuple[str, str]]:
    """(numeric encoding, architecture) of each row, in the order they ran."""
    return [(e, a) for e in sizes.numeric_encodings for a in sizes.architectures]


def _arm_of(r: dict[str, Any]) -> str:
    return arm(r["architecture"], r.get("numeric_encoding", NO_ENCODING))


def _result(sizes: Sizes, data: str, base: Config, runs: list[dict[str, Any]],
            test_labels: dict[int, dict[str, np.ndarray]], gbdt: list[dict[str, Any]]) -> BenchmarkResult:
    summary: dict[str, Any] = {}
    arms = [arm(a, e) for e, a in _arms(sizes)]
    for group in sizes.groups:
        for name in arms:
            aucs = {h: [r["test_auc"][h] for r in runs if r["group"] == group and _arm_of(r) == name]
                    for h in _heads(group)}
            summary.setdefault(f"group{group}", {})[name] = {
                h: {**mean_sd(values), "best": max(values) if values else float("nan"),
                    "median": float(np.median(values)) if values else float("nan")}
                for h, values in aucs.items()}
    gbdt_summary = {f"group{group}": {h: mean_sd([r["test_auc"][h] for r in gbdt if r["group"] == group])
                                      for h in _heads(group)} for group in sizes.groups}
    test_sample = {f"group{g}": {h: {"examples": len(v), "positives": int(np.sum(v))}
                                 for h, v in labels.items()} for g, labels in test_labels.items()}
    first = arms[0]
    sampling_se = {f"group{g}": {h: auc_standard_error(summary[f"group{g}"][first][h]["mean"], v)
                                 for h, v in labels.items()} for g, labels in test_labels.items()}

    tables = []
    for group in sizes.groups:
        heads = _heads(group)
        table = Table(f"Group {group}: test AUC ({', '.join(heads)}), {sizes.seeds} seed(s): "
                      "mean ± sd, median, best",
                      ["model", *[c for h in heads for c in (f"{h} mean", "median", "best")]])
        for name in arms:
            s = summary[f"group{group}"][name]
            table.rows.append([f"watchnext {name}", *[c for h in heads for c in (
                fmt(s[h], 4), fmt(s[h]["median"], 4), fmt(s[h]["best"], 4))]])
        trees = [r for r in gbdt if r["group"] == group]
        table.rows.append([f"sklearn HistGradientBoosting, same rows ({len(trees)} seed(s))", *[
            c for h in heads for c in (fmt(gbdt_summary[f"group{group}"][h], 4), "—",
                                       fmt(max(r["test_auc"][h] for r in trees), 4) if trees else "—")]])
        if group == 1:
            for arch in ("mmoe", "shared_bottom"):
                cells = []
                for h in heads:
                    ref = PAPER[h][arch]
                    cells += [fmt(ref["mean"], 4) if "mean" in ref else "—", "—", fmt(ref["best"], 4)]
                table.rows.append([f"paper {arch} (train on .data)", *cells])
            for arch in ("mmoe", "shared_bottom", "ple"):
                # DeepCTR's "ple" is an architecture (Progressive Layered Extraction), not the
                # piecewise-linear numeric encoding of the rows above.
                label = "PLE (progressive layered extraction)" if arch == "ple" else arch
                table.rows.append([f"DeepCTR {label} (data README)",
                                   *[c for h in heads for c in (DEEPCTR[h][arch], "—", "—")]])
        tables.append(table)
    timing = Table("Pipeline runs (wall seconds on this machine, under the load recorded above; "
                   "Transform is a cache hit after the first run of each group and numeric encoding)",
                   ["group", "architecture", "numeric encoding", "seed", "pipeline s", "Transform s",
                    "Trainer s", *[f"{h} test AUC" for h in ("task 1", "task 2")]])
    for r in runs:
        c = r["component_seconds"]
        timing.rows.append([r["group"], r["architecture"], r.get("numeric_encoding", NO_ENCODING), r["seed"],
                            f"{r['pipeline_seconds']:.0f}",
                            f"{c.get('Transform', float('nan')):.0f}",
                            f"{c.get('Trainer', float('nan')):.0f}",
                            *[f"{v:.4f}" for v in r["test_auc"].values()]])
    tables.append(timing)

    m = base.model
    t = base.data.table
    notes = [
        f"Data: {data}; only the UCI test file (99,762 rows) is used, split {t.train_percent}/"
        f"{t.eval_percent}/{t.test_percent} (train/eval/test) by TableExampleGen's hash of (split_seed "
        f"{t.split_seed}, file, line). The paper trains on the 199,523-row .data file and halves the test "
        "file into validation and test, so its figures are a reference for the range, not a like-for-like "
        "comparison; the DeepCTR figures (data README) use a 50/25/25 split of the same test file (another "
        "permutation) and early stopping.",
        f"Model (configs/census_income.yaml): 31 categorical inputs (own vocabulary, 4-dim embedding "
        f"each) and 7 numeric (z-scored, log1p for the money columns) → shared layer "
        f"{m.shared_hidden_units} → "
        f"mmoe: {m.num_experts} experts {list(m.expert_units)} with gate dropout {m.gate_dropout}; "
        f"shared_bottom: one MLP {list(m.expert_units)} → towers {list(m.tower_units)}. Adam lr "
        f"{base.training.learning_rate}, "
        + (f"{sizes.steps} steps of batch {sizes.batch_size} (about "
           f"{sizes.steps * sizes.batch_size / 49881:.0f} epochs of the train split), no early stopping; "
           if sizes.steps else
           f"batch {sizes.batch_size}, trained as the Trainer trains by default (up to "
           f"{base.training.epochs} epochs, validated each epoch on the eval split, early stopping after "
           f"{base.training.early_stopping_patience} validations without improvement, best weights "
           "restored); ")
        + "the seed changes initialization, dropout and shuffling only (the split stays fixed).",
        *([f"Rows named '+ <encoding> numeric' add features.numeric_embeddings for all "
           f"{len(base.features.numeric)} numeric features: {NumericEmbedding('x').buckets} quantile bins "
           f"computed by Transform on the train split (after log1p where configured), piecewise_linear "
           f"(Gorishniy et al. 2022: the fraction of each bin below the value → Dense("
           f"{NumericEmbedding('x').embedding_dim}) + ReLU) or buckets (an embedding per bin), the z-scored "
           "value kept; everything else as the config. Serving still takes raw values."]
          if any(e != NO_ENCODING for e in sizes.numeric_encodings) else []),
        "GBDT row: sklearn HistGradientBoostingClassifier per task (" + ", ".join(
            f"{k}={v}" for k, v in GBDT_PARAMS.items()) + ", id columns as native categoricals coded on the "
        "train split, numeric columns raw), fitted on the train split of the same Examples artifact the "
        "pipeline trained on (its own early-stopping holdout is a seeded 20% of it) and scored on the same "
        "test rows; the seed changes that holdout only.",
        "Group 2's education task: 1 for a bachelor's, master's, professional school or doctorate degree "
        "(associate degrees and 'some college' are 0).",
        "Each run is create_pipeline(config) on LocalDagRunner without " + " and ".join(SKIPPED_COMPONENTS)
        + " (the blessing does not change the trained model, and TFMA cost more than training); "
        "`watchnext run --config configs/census_income.yaml` runs them too.",
        "Test AUC: each run's exported serving_default signature on the raw tf.Examples of the test split. "
        "Sampling standard error of a test AUC (Hanley & McNeil, at the first row's mean): "
        + "; ".join(f"{g} {h} {se:.4f}" for g, per in sampling_se.items() for h, se in per.items())
        + ". All rows are scored on the same test rows, so their difference is less noisy than that.",
    ]
    # A run far below its architecture's median (e.g. a tower whose ReLUs all died) moves the
    # mean and sd a lot: name it rather than leave it to be inferred.
    outliers = []
    for r in runs:
        for h, auc in r["test_auc"].items():
            median = summary[f"group{r['group']}"][_arm_of(r)][h]["median"]
            if auc < median - OUTLIER_AUC_GAP:
                outliers.append(f"group {r['group']} {_arm_of(r)} seed {r['seed']}: {h} {auc:.4f} "
                                f"(median {median:.4f})")
    if outliers:
        notes.append(f"Runs more than {OUTLIER_AUC_GAP} below their median test AUC (they pull the mean down "
                     "and the sd up; the median column is robust to them): " + "; ".join(outliers) + ".")
    resumed = sum(1 for r in runs if r.get("resumed"))
    if resumed:
        notes.append(f"{resumed} of the {len(runs)} trainings were finished by an earlier invocation that "
                     f"was stopped part-way ({RUNS_FILE} in the work dir); their figures and timings are "
                     "that invocation's, and this report's wall time covers only the rest.")
    if sizes.rows:
        notes.insert(0, f"Only the first {sizes.rows} rows of the file and {sizes.steps} steps "
                        f"({'smoke' if sizes.rows < 1000 else 'quick'} size): a check that it runs, not the "
                        "benchmark's figures (--full).")

    panels = [(group, h) for group in sizes.groups for h in _heads(group)]

    def draw(fig: Any) -> None:
        # One panel per task (their AUCs differ by more than the architectures do); every seed
        # is a dot, so an outlier shows as one run rather than as a wide error bar.
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (group, head) in zip(axes, panels, strict=True):
            shown: list[float] = []
            below: list[tuple[int, float]] = []
            for i, (encoding, arch) in enumerate(_arms(sizes)):
                name = arm(arch, encoding)
                values = [r["test_auc"][head] for r in runs if r["group"] == group and _arm_of(r) == name]
                median = summary[f"group{group}"][name][head]["median"]
                inliers = [v for v in values if v >= median - OUTLIER_AUC_GAP]
                below += [(i, v) for v in values if v < median - OUTLIER_AUC_GAP]
                jitter = np.linspace(-0.12, 0.12, len(inliers)) if len(inliers) > 1 else [0.0]
                ax.scatter(i + np.asarray(jitter), inliers, s=16, color=f"C{i}", zorder=3,
                           label="a seed" if i == 0 else None)
                ax.hlines(median, i - 0.25, i + 0.25, colors="k", label="median" if i == 0 else None)
                shown += inliers
                ref = PAPER.get(head, {}).get(arch, {}) if group == 1 else {}
                for key, style in (("best", "--"), ("mean", ":")):
                    if key in ref:
                        ax.hlines(ref[key], i - 0.3, i + 0.3, colors="r", linestyles=style,
                                  label=f"paper {key}" if i == 0 else None)
                        shown.append(ref[key])
            trees = gbdt_summary[f"group{group}"][head]["mean"]
            if math.isfinite(trees):
                ax.axhline(trees, color="g", linestyle="-.", label="GBDT mean (same rows)")
                shown.append(trees)
            low, high = min(shown), max(shown)
            pad = max(0.002, 0.15 * (high - low))
            ax.set_ylim(low - pad, high + pad)
            for i, v in below:  # off the axis: an arrow at the bottom with the value
                ax.annotate(f"{v:.3f}", xy=(i, low - 0.8 * pad), ha="center", va="bottom", fontsize=7,
                            arrowprops={"arrowstyle": "->"}, xytext=(i, low - 0.3 * pad))
            ax.set_xticks(range(len(arms)), [a.replace(" + ", "\n+ ") for a in arms], fontsize=8)
            ax.set_xlim(-0.6, len(arms) - 0.4)
            ax.set_title(f"group {group}: {head}")
            ax.set_ylabel("test AUC")
        # One legend below the panels (the first panel has every kind of mark): inside, it hid data.
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=8)

    return BenchmarkResult(
        name=NAME,
        title="Census-Income (KDD) through the pipeline: test AUC by task group, architecture and "
              "numeric encoding",
        parameters={**dataclasses.asdict(sizes), "data": data, "config": str(CONFIG_FILE),
                    "college_degrees": list(COLLEGE_DEGREES)},
        figures={"summary": summary, "gbdt_summary": gbdt_summary, "gbdt_runs": gbdt,
                 "gbdt_params": GBDT_PARAMS, "paper": PAPER, "deepctr": DEEPCTR, "test_sample": test_sample,
                 "auc_sampling_se": sampling_se, "runs": runs},
        tables=tables,
        plots=[Plot("auc", "Test AUC per task and arm (architecture, numeric encoding): one dot per seed, "
                    "black line the median, arrows runs far below it (value printed); red lines: the "
                    "paper's best (dashed) and mean (dotted), group 1; green: GBDT's mean", draw,
                    size=(3.2 * len(panels), 4.4))],
        notes=notes,
    )
