"""Same-architecture training speed: watchnext's MMoE vs DeepCTR 0.9.4's `MMOE`, on the same batches.

Issue 15 §1 sets the target "same-architecture training ≥ 1.0× DeepCTR at batch 256 and 1024";
this benchmark measures it. Both models are the census architecture DeepCTR's README figure uses:
31 categorical columns embedded 4-wide and 7 numeric columns, concatenated (131 wide), 3 experts
of [256, 128] with ReLU, one softmax gate per task (no bias, no hidden layer), a [64] tower and one
logit per task (income > 50K, never married), binary cross-entropy summed over the two tasks,
Adam at one learning rate. watchnext's model is built by `build_model` from
configs/census_income.yaml with those sizes, gate dropout 0 and no position (a table has none,
so there is no shallow tower); its shared hidden layer (Zhao et al.'s, which DeepCTR's MMOE does
not have) is replaced by the identity, so both compute the same function with the same number
of trainable weights. DeepCTR's embedding and dense L2 penalties are set to 0 (same loss).

Data: the UCI census file (`--data`), read row by row with TableExampleGen's own parser and split
50/25/25 by its hash (components/table_example_gen/parsing.py), then featurized in numpy as the
preprocessing_fn does (vocabularies by frequency on the train split with one OOV bucket, log1p
of the money columns, z-scores with the train split's moments), not through Transform: a Beam
run per benchmark would cost minutes for nothing the step sees. Both models read the same
train rows, cut once into whole batches held in memory (ids int64 [B] for watchnext's contract,
int32 [B, 1] for DeepCTR's Input layers; same values).

Timing: per batch size each model is built and traced first (`warmup` steps). Then in every round
each (batch, model) runs `warmup` + `steps` steps through the same `Model.fit` call (one epoch of
that many steps, no validation, no progress callback), and only the last `steps` steps count
(per-step timestamps, training_speed's `StepTimes`). The two models alternate who goes first from
round to round, and the median round is reported, so a change in the machine's load hits both.
Each round starts further into the batches, so training does not revisit the same few. After
the timed rounds each model's test AUC per task is a check that both learned.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import census, common
from bench.cli import MissingExtra
from bench.report import BenchmarkResult, Plot, Table
from bench.training_speed import StepTimes, examples_per_second
from watchnext.components.table_example_gen import parsing
from watchnext.components.table_example_gen.component import table_spec
from watchnext.core.config import Config, load_config
from watchnext.models import fit
from watchnext.models.layers import id_input_dim
from watchnext.models.model import WatchNextModel, build_model
from watchnext.pipeline import oracle_scores

import numpy as np
import tensorflow as tf
import tf_keras

NAME = "deepctr_peer"
# The peer and the extra that installs it (setup.py extras_require["peer"]).
PEER_PACKAGE = "deepctr"
PEER_VERSION = "0.9.4"
INSTALL_HINT = "pip install -e '.[peer]'"
MODELS = ("watchnext", "deepctr")

log = logging.getLogger("watchnext.benchmarks")


@dataclass(frozen=True)
class Sizes:
    steps: int
    warmup: int = 10
    rounds: int = 5
    batches: tuple[int, ...] = (256, 1024)
    # 0: every row of the file; otherwise its first `rows` rows (census.data_file).
    rows: int = 0
    # The architecture both models share (DeepCTR's MMOE defaults, its README's census figure).
    num_experts: int = 3
    expert_units: tuple[int, ...] = (256, 128)
    tower_units: tuple[int, ...] = (64,)
    learning_rate: float = 0.001
    seed: int = 0


# Wall time on 2 cores: smoke ~1 min (mostly tracing), quick ~2-3 min, full ~10 min.
SIZES = {
    "smoke": Sizes(steps=3, warmup=2, rounds=1, rows=5000),
    "quick": Sizes(steps=100, rounds=3),
    "full": Sizes(steps=400, rounds=9),
}


def require_peer() -> Any:
    """The deepctr module; MissingExtra (one line, naming the extra to install) when it is absent."""
    try:
        return importlib.import_module(PEER_PACKAGE)
    except ImportError as e:
        raise MissingExtra(
            f"needs DeepCTR {PEER_VERSION}, the model it compares with, which is not installed "
            f"({e}): run `{INSTALL_HINT}` from the repository root") from None


# ---------------------------------------------------------------------------
# The census rows, parsed as TableExampleGen parses them and featurized as the preprocessing_fn does.


@dataclass
class Split:
    """One split's model inputs and labels, row-aligned: transformed features and float32 labels [N]."""

    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.labels.values())))


def read_splits(path: str, config: Config) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """({split name: parsed rows}, rejected rows) of a table file, split by TableExampleGen's hash.

    Each line goes through the ExampleGen's `split_fields` and `parse_row` (so labels are
    derived by the config's `label_from` rules) and to the split `split_index` gives it.
    """
    spec = table_spec(config)
    t = config.data.table
    names = ["train", "eval", "test"]
    bounds = list(np.cumsum([t.train_percent, t.eval_percent, t.test_percent]))
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    rejected = 0
    for line, payload in parsing.read_table_file(path):
        if payload is None:
            continue
        fields, invalid = parsing.split_fields(payload, spec.delimiter)
        record, invalid = (parsing.parse_row(fields, spec.columns, spec) if fields is not None
                           else (None, invalid))
        if record is None:
            rejected += 1
            continue
        splits[names[parsing.split_index(spec.split_seed, path, line, bounds)]].append(record)
    return splits, rejected


def vocabularies(rows: Sequence[Mapping[str, Any]], config: Config) -> dict[str, dict[str, int]]:
    """{vocabulary: {token: index}}, most frequent token first (tft.vocabulary's order), from `rows`."""
    tokens: dict[str, dict[str, int]] = {}
    for f in config.features.ids:
        counts = tokens.setdefault(f.vocabulary, {})
        for row in rows:
            counts[row[f.name]] = counts.get(row[f.name], 0) + 1
    def ranked(counts: dict[str, int]) -> list[str]:
        return [tok for tok, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    return {vocab: {tok: i for i, tok in enumerate(ranked(counts))} for vocab, counts in tokens.items()}


Moments = dict[str, tuple[float, float]]


def featurize(rows: Sequence[Mapping[str, Any]], config: Config, vocabs: Mapping[str, Mapping[str, int]],
              moments: Moments | None = None) -> tuple[Split, Moments]:
    """The preprocessing_fn's outputs for `rows`, in numpy, and the numeric moments it used.

    Ids: their vocabulary index, a token the vocabulary lacks → its one OOV bucket (index
    len(vocabulary)). Numeric: log1p(max(x, 0)) where configured, then (x − mean) / sd with
    `moments` (None: computed from these rows, as Transform analyzes the train split).
    """
    feats = config.features
    out: dict[str, np.ndarray] = {}
    for f in feats.ids:
        vocab = vocabs[f.vocabulary]
        out[f.name] = np.array([vocab.get(row[f.name], len(vocab)) for row in rows], np.int64)
    raw = {}
    for name in feats.numeric:
        x = np.array([row[name] for row in rows], np.float64)
        raw[name] = np.log1p(np.maximum(x, 0.0)) if name in feats.log1p_numeric else x
    moments = dict(moments) if moments is not None else {
        name: (float(x.mean()), float(x.std())) for name, x in raw.items()}
    for name, x in raw.items():
        mean, sd = moments[name]
        out[name] = ((x - mean) / (sd if sd > 0 else 1.0)).astype(np.float32)
    labels = {h.label: np.array([row[h.label] for row in rows], np.float32) for h in config.heads}
    return Split(out, labels), moments


def census_splits(path: str, config: Config) -> tuple[Split, Split, dict[str, int], dict[str, Any]]:
    """(train, test, vocab sizes by vocabulary, counts) of the census file at `path`."""
    splits, rejected = read_splits(path, config)
    vocabs = vocabularies(splits["train"], config)
    train, moments = featurize(splits["train"], config, vocabs)
    test, _ = featurize(splits["test"], config, vocabs, moments)
    counts = {"rejected_rows": rejected, **{f"{k}_rows": len(v) for k, v in splits.items()}}
    return train, test, {k: len(v) for k, v in vocabs.items()}, counts


# ---------------------------------------------------------------------------
# The two models, with one architecture.


def shared_config(sizes: Sizes) -> Config:
    """configs/census_income.yaml with the compared architecture, no gate dropout and no position."""
    base = load_config(str(census.CONFIG_FILE))
    config = common.with_model(base, architecture="mmoe", num_experts=sizes.num_experts,
                               expert_units=tuple(sizes.expert_units), tower_units=tuple(sizes.tower_units),
                               gate_dropout=0.0, position_mode="none")
    return config.replace(training=dataclasses.replace(config.training, learning_rate=sizes.learning_rate))


def watchnext_model(config: Config, vocab_sizes: Mapping[str, int], seed: int) -> WatchNextModel:
    """watchnext's ranker for `config`, its shared hidden layer made the identity, compiled (Adam).

    The shared hidden layer is the one part of the architecture DeepCTR's MMOE lacks (its
    experts and gates read the embeddings directly), and the config cannot turn it off
    (`shared_hidden_units` >= 1); everything else is watchnext's own code path.
    """
    tf_keras.utils.set_random_seed(seed)
    model = build_model(config, vocab_sizes)
    model.shared_hidden = tf_keras.layers.Identity(name="shared_hidden")
    return fit.compile_model(model, config)


def deepctr_model(config: Config, vocab_sizes: Mapping[str, int], seed: int) -> Any:
    """DeepCTR's `MMOE` with the same inputs (id columns in config order, then the numeric ones),
    experts, gates and towers, compiled with Adam at the same rate and binary cross-entropy per task."""
    require_peer()
    from deepctr.feature_column import DenseFeat, SparseFeat
    from deepctr.models import MMOE

    m = config.model
    columns = [SparseFeat(f.name, id_input_dim(f, vocab_sizes), embedding_dim=f.embedding_dim)
               for f in config.features.ids]
    columns += [DenseFeat(name, 1) for name in config.features.numeric]
    tf_keras.utils.set_random_seed(seed)
    model = MMOE(columns, num_experts=m.num_experts, expert_dnn_hidden_units=tuple(m.expert_units),
                 tower_dnn_hidden_units=tuple(m.tower_units), gate_dnn_hidden_units=(), l2_reg_embedding=0.0,
                 l2_reg_dnn=0.0, seed=seed, task_types=["binary"] * len(config.heads),
                 task_names=config.head_names)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=config.training.learning_rate),
                  loss=["binary_crossentropy"] * len(config.heads))
    return model


def trainable_shapes(model: Any) -> list[tuple[int, ...]]:
    """The shapes of a model's trainable weights, sorted (fused experts unstacked to one per expert).

    watchnext's `FusedExperts` holds a level's n experts as one [n, d_in, d_out] kernel and one
    [n, d_out] bias; DeepCTR holds n separate [d_in, d_out] and [d_out]. Unstacked, equal
    architectures give equal lists.
    """
    shapes: list[tuple[int, ...]] = []
    for v in model.trainable_variables:
        shape = tuple(int(d) for d in v.shape)
        if "/experts/" in v.name or v.name.startswith("experts/"):
            shapes += [shape[1:]] * shape[0]
        else:
            shapes.append(shape)
    return sorted(shapes)


# ---------------------------------------------------------------------------
# Feeds, timing and the summary.


def in_memory_feeds(train: Split, config: Config, batch: int, start: int = 0
                    ) -> tuple[tf.data.Dataset, tf.data.Dataset, int]:
    """(watchnext feed, DeepCTR feed, batches per pass): the same whole batches, cut once, in the
    same order from batch `start` on, repeated. No per-example work happens in either feed."""
    n = len(train) // batch
    if n < 1:
        raise ValueError(f"{NAME}: {len(train)} train rows do not fill one batch of {batch}; "
                         "use a larger --data file or more rows")
    order = np.roll(np.arange(n), -(start % n))

    def cut(x: np.ndarray, *tail: int) -> np.ndarray:
        return x[:n * batch].reshape(n, batch, *tail)[order]

    ids = {f.name for f in config.features.ids}
    ours = {**{k: cut(v) for k, v in train.features.items()}, **{k: cut(v) for k, v in train.labels.items()}}
    theirs_x = {k: cut(v.astype(np.int32) if k in ids else v, 1) for k, v in train.features.items()}
    theirs_y = tuple(cut(train.labels[h.label], 1) for h in config.heads)
    feed = tf.data.Dataset.from_tensor_slices
    return (feed(ours).repeat().prefetch(2), feed((theirs_x, theirs_y)).repeat().prefetch(2), n)


def timed_fit(model: Any, feed: tf.data.Dataset, warmup: int, steps: int, batch: int) -> float:
    """Examples/s of `steps` training steps after `warmup` ones, through one plain `Model.fit`."""
    timer = StepTimes()
    model.fit(feed, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[timer])
    return examples_per_second(timer.times, warmup, steps, batch)


def round_order(round_index: int, names: Sequence[str] = MODELS) -> list[str]:
    """Who trains first in a round: the given order in even rounds, reversed in odd ones."""
    return list(names) if round_index % 2 == 0 else list(reversed(names))


def summarize(rates: Mapping[int, Mapping[str, Sequence[float]]]) -> dict[int, dict[str, Any]]:
    """Per batch: each model's median examples/s over the rounds, the ratio of the medians
    (watchnext / DeepCTR, the headline), and the median of the per-round ratios beside it."""
    out: dict[int, dict[str, Any]] = {}
    for batch, by_model in rates.items():
        ours, theirs = list(by_model["watchnext"]), list(by_model["deepctr"])
        per_round = [a / b for a, b in zip(ours, theirs, strict=True)]
        median = {name: float(np.median(by_model[name])) for name in MODELS}
        out[batch] = {"examples_per_second": median,
                      "by_round": {name: list(by_model[name]) for name in MODELS},
                      "ratio": median["watchnext"] / median["deepctr"],
                      "ratio_by_round": per_round, "ratio_median_of_rounds": float(np.median(per_round))}
    return out


def held_out_aucs(model: Any, name: str, test: Split, config: Config, chunk: int = 4096) -> dict[str, float]:
    """Each head's AUC on the test split, from either model's predicted probabilities."""
    ids = {f.name for f in config.features.ids}
    parts: dict[str, list[np.ndarray]] = {h.name: [] for h in config.heads}
    for start in range(0, len(test), chunk):
        rows = {k: v[start:start + chunk] for k, v in test.features.items()}
        if name == "watchnext":
            out = model({k: tf.constant(v) for k, v in rows.items()}, training=False)
            scores = [out[h.name] for h in config.heads]
        else:
            x = {k: tf.constant((v.astype(np.int32) if k in ids else v)[:, None]) for k, v in rows.items()}
            scores = model(x, training=False)
        for h, s in zip(config.heads, scores, strict=True):
            parts[h.name].append(np.reshape(np.asarray(s), [-1]))
    return {h.name: oracle_scores.auc(np.concatenate(parts[h.name]), test.labels[h.label])
            for h in config.heads}


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    peer = require_peer()
    path = census.data_file(context, sizes)
    config = shared_config(sizes)
    t0 = time.perf_counter()
    train, test, vocab_sizes, counts = census_splits(path, config)
    featurize_seconds = time.perf_counter() - t0
    log.info("%s: %d train, %d test rows featurized in %.1f s", NAME, len(train), len(test),
             featurize_seconds)

    tf_keras.backend.clear_session()
    builders = {"watchnext": watchnext_model, "deepctr": deepctr_model}
    models = {(b, name): builders[name](config, vocab_sizes, sizes.seed)
              for b in sizes.batches for name in MODELS}
    # Trace each (batch, model) and warm it up before any timing.
    trace_seconds: dict[str, float] = {}
    for (b, name), model in models.items():
        feeds = in_memory_feeds(train, config, b)
        t0 = time.perf_counter()
        model.fit(feeds[MODELS.index(name)], steps_per_epoch=sizes.warmup, epochs=1, verbose=0)
        trace_seconds[f"{name} b={b}"] = time.perf_counter() - t0
    # Counted once both are built (watchnext's subclassed model creates its weights on its first call).
    shapes = {name: trainable_shapes(models[(sizes.batches[0], name)]) for name in MODELS}
    params = {name: int(sum(np.prod(s) for s in shapes[name])) for name in MODELS}

    rates: dict[int, dict[str, list[float]]] = {b: {name: [] for name in MODELS} for b in sizes.batches}
    for r in range(sizes.rounds):
        for b in sizes.batches:
            feeds = in_memory_feeds(train, config, b, start=sizes.warmup + r * (sizes.warmup + sizes.steps))
            for name in round_order(r):
                rate = timed_fit(models[(b, name)], feeds[MODELS.index(name)], sizes.warmup, sizes.steps, b)
                rates[b][name].append(rate)
                log.info("%s: round %d, batch %d, %s: %.0f examples/s", NAME, r + 1, b, name, rate)
    summary = summarize(rates)
    aucs = {f"{name} b={b}": held_out_aucs(models[(b, name)], name, test, config) for b in sizes.batches
            for name in MODELS}
    return _result(sizes, config, path, summary, aucs, params, shapes, counts, trace_seconds,
                   featurize_seconds, peer.__version__)


def _result(sizes: Sizes, config: Config, path: str, summary: dict[int, dict[str, Any]],
            aucs: dict[str, dict[str, float]], params: dict[str, int], shapes: dict[str, Any],
            counts: dict[str, Any], trace_seconds: dict[str, float], featurize_seconds: float,
            peer_version: str) -> BenchmarkResult:
    heads = config.head_names
    speed = Table(f"Training examples/s, same architecture and batches (median of {sizes.rounds} interleaved "
                  f"round(s) of {sizes.steps} timed steps after {sizes.warmup} warm-up steps)",
                  ["batch", "watchnext", f"DeepCTR {peer_version}", "watchnext / DeepCTR (ratio of medians)",
                   "median of per-round ratios"])
    for b, s in summary.items():
        e = s["examples_per_second"]
        speed.rows.append([str(b), f"{e['watchnext']:,.0f}", f"{e['deepctr']:,.0f}", f"{s['ratio']:.2f}×",
                           f"{s['ratio_median_of_rounds']:.2f}×"])
    trained_steps = sizes.warmup + sizes.rounds * (sizes.warmup + sizes.steps)
    quality = Table(f"Test AUC after the timed training ({trained_steps} steps per model and batch; a check "
                    "that both learn, not a quality comparison)", ["model", *heads])
    for key, auc in aucs.items():
        quality.rows.append([key, *[f"{auc[h]:.4f}" for h in heads]])
    m = config.model
    notes = [
        f"Data: {path} ({counts['train_rows']:,} train / {counts['test_rows']:,} test rows by "
        f"TableExampleGen's split hash, {counts['rejected_rows']} rejected), featurized in numpy as the "
        f"preprocessing_fn does ({featurize_seconds:.1f} s), not through Transform; both models read the "
        "same in-memory batches.",
        f"Architecture (both): {len(config.features.ids)} ids embedded "
        f"{config.features.ids[0].embedding_dim}-wide + {len(config.features.numeric)} numeric → "
        f"{m.num_experts} experts {list(m.expert_units)} (ReLU), a softmax gate per task without bias, "
        f"towers {list(m.tower_units)} → one logit per task; Adam lr {sizes.learning_rate}; sigmoid "
        f"cross-entropy per task, summed. Trainable weights: watchnext {params['watchnext']:,}, DeepCTR "
        f"{params['deepctr']:,}"
        + (" (equal shapes, experts unstacked)." if shapes["watchnext"] == shapes["deepctr"]
           else " — THE SHAPES DIFFER: the comparison is not like for like."),
        "watchnext: build_model on configs/census_income.yaml with these sizes, gate dropout 0, "
        "position_mode none (no shallow tower), AUC at evaluation only (the default), its shared hidden "
        "layer replaced by the identity (DeepCTR's MMOE has none); experts as FusedExperts (one "
        "chain of matmul + bias_add + ReLU per expert on slices of the stacked weights). "
        "DeepCTR: deepctr.models.MMOE with gate_dnn_hidden_units=(), l2_reg_embedding=0, l2_reg_dnn=0 (its "
        "default 1e-5 embedding penalty would be extra work and another loss); its zero-weight penalty "
        "terms are still computed each step, as its layers create them.",
        "Both train through the same Model.fit call (steps_per_epoch, one epoch, verbose 0, one per-step "
        "timestamp callback); the first fit of each (model, batch) traces and warms up and is not timed "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in trace_seconds.items())}). The models alternate who goes "
        "first each round.",
    ]
    if sizes.rows:
        notes.insert(0, f"Only the first {sizes.rows} rows of the file: a check that it runs, not the "
                        "benchmark's figures (--quick and --full read every row).")

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        x = np.arange(len(summary))
        for i, name in enumerate(MODELS):
            ax.bar(x + (i - 0.5) * 0.4, [s["examples_per_second"][name] for s in summary.values()], 0.4,
                   label=name)
            for j, s in enumerate(summary.values()):
                ax.scatter([x[j] + (i - 0.5) * 0.4] * len(s["by_round"][name]), s["by_round"][name],
                           color="k", s=8, zorder=3)
        ax.set_xticks(x, [f"batch {b}" for b in summary])
        ax.set_ylabel("training examples / s")
        ax.set_title("Same-architecture MMoE: watchnext vs DeepCTR (bars: median; dots: rounds)")
        ax.legend()

    return BenchmarkResult(
        name=NAME,
        title=f"Training speed against DeepCTR {peer_version}'s MMOE, same architecture and batches",
        parameters={**dataclasses.asdict(sizes), "data": path, "deepctr": peer_version},
        figures={"summary": summary, "test_auc": aucs, "trainable_parameters": params, "counts": counts,
                 "trace_seconds": trace_seconds, "featurize_seconds": featurize_seconds,
                 "same_shapes": shapes["watchnext"] == shapes["deepctr"],
                 "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                             "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}},
        tables=[speed, quality],
        plots=[Plot("speed", "Training examples/s per batch size: median (bars) and each round (dots)",
                    draw)],
        notes=notes,
    )
