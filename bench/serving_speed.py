"""Serving latency of the exported model, in process, by candidates per request.

The model (default config, briefly trained) is exported with `models.export.export_model`
and the simulation's Transform output, loaded with `tf.saved_model.load`, and its
`serving_default` signature is called with requests of 1, 100, 500 and 1000 serialized
tf.Examples holding only what a client sends (the served parse spec's features; no labels,
position, request id or timestamp). Per request size: p50/p99 latency over repeated calls,
candidates/s at p50, and the model's arithmetic (2 × multiply-adds per candidate) per second
as a share of the matmul probe's FLOP/s.

Where the time goes: `tf.io.parse_example` alone on the same batch (the signature's first
step), and the Keras model alone on already transformed features (a tf.function of the same
weights, position missing as at serving); the Transform graph's share is what remains,
serving − parse − model (derived, so it carries both measurements' noise). No TF Serving,
gRPC or request batching is involved.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from bench import common
from bench.report import BenchmarkResult, Plot, Table, si
from watchnext.core.config import Config
from watchnext.models.export import EXAMPLES_INPUT, SERVING_SIGNATURE, export_model
from watchnext.models.features import SCORE_WEIGHTS_FEATURE, serving_raw_feature_spec
from watchnext.models.model import multiplications_per_example

import numpy as np
import tensorflow as tf

NAME = "serving_speed"


@dataclass(frozen=True)
class Sizes:
    impressions: int
    steps: int
    candidates: tuple[int, ...] = (1, 100, 500, 1000)
    repeats: int = 200
    min_repeats: int = 30
    # Stop a request size after this long once min_repeats calls are in.
    seconds_per_size: float = 15.0
    matmul_n: int = 1024
    matmul_seconds: float = 2.0
    sim_seed: int = 7
    run_eagerly: bool = False


SIZES = {
    "smoke": Sizes(impressions=400, steps=2, candidates=(1, 10), repeats=5, min_repeats=3,
                   seconds_per_size=2.0, matmul_n=256, matmul_seconds=0.2, run_eagerly=True),
    "quick": Sizes(impressions=10000, steps=50),
    "full": Sizes(impressions=40000, steps=600, repeats=1000, min_repeats=200, seconds_per_size=60.0,
                  matmul_seconds=5.0),
}


def client_examples(raw: list[bytes], keep: set[str]) -> list[bytes]:
    """The examples with only the features in `keep` (what a client would send)."""
    out = []
    example = tf.train.Example()
    for record in raw:
        example.ParseFromString(record)
        for key in list(example.features.feature):
            if key not in keep:
                del example.features.feature[key]
        out.append(example.SerializeToString())
    return out


def time_calls(calls: dict[str, tuple[Any, Any]], repeats: int, min_repeats: int, budget: float
               ) -> dict[str, list[float]]:
    """Wall seconds of each call of fn(arg), per name, after three warm-up calls each.

    The calls take turns (one of each per repetition) so that a change in the machine's load
    hits them alike; outputs are fetched to numpy inside the timed span.
    """
    for fn, arg in calls.values():
        for _ in range(3):
            _fetch(fn(arg))
    times: dict[str, list[float]] = {name: [] for name in calls}
    done = 0
    start = time.perf_counter()
    while done < repeats and (done < min_repeats or time.perf_counter() - start < budget):
        for name, (fn, arg) in calls.items():
            t0 = time.perf_counter()
            _fetch(fn(arg))
            times[name].append(time.perf_counter() - t0)
        done += 1
    return times


def _touch(tensors: Any) -> tf.Tensor:
    """A scalar depending on every tensor (so none is pruned), cheap to fetch."""
    return tf.add_n([tf.size(t, out_type=tf.int64) for t in tf.nest.flatten(tensors, expand_composites=True)])


def _fetch(outputs: Any) -> None:
    tf.nest.map_structure(lambda t: t.numpy(), outputs, expand_composites=True)


def run(context: common.Context, sizes: Sizes) -> BenchmarkResult:
    config = Config()
    sim = context.simulation(sizes.impressions, sizes.sim_seed, config)
    macs = multiplications_per_example(config, sim.vocab_sizes())
    trained = common.train(sim, config, sizes.steps, 0, run_eagerly=sizes.run_eagerly)
    tft_output = sim.tf_transform_output()
    export_dir = os.path.join(context.work_dir, "export", "1")
    t0 = time.perf_counter()
    export_model(trained.model, tft_output, config, export_dir)
    export_seconds = time.perf_counter() - t0
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures[SERVING_SIGNATURE]

    serve_spec = serving_raw_feature_spec(tft_output.raw_feature_spec(), config)
    pool = client_examples(sim.eval_raw, set(serve_spec) - {SCORE_WEIGHTS_FEATURE})
    transformed = sim.eval_features(position=False)
    transformed = {k: v for k, v in transformed.items() if k not in config.label_keys}

    tft_layer = tft_output.transform_features_layer()

    # The parts return one scalar so fetching many outputs does not count against them.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def parse_only(examples: tf.Tensor) -> tf.Tensor:
        return _touch(tf.io.parse_example(examples, serve_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def parse_and_transform(examples: tf.Tensor) -> tf.Tensor:
        parsed = tf.io.parse_example(examples, serve_spec)
        parsed.pop(SCORE_WEIGHTS_FEATURE)
        return _touch(tft_layer(parsed))

    model_spec = {k: tf.TensorSpec([None, *v.shape[1:]], tf.as_dtype(v.dtype))
                  for k, v in transformed.items()}

    @tf.function(input_signature=[model_spec])
    def model_only(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return trained.model(features, training=False)

    parts = {"serving": lambda x: serve(**{EXAMPLES_INPUT: x}),
             "parse": parse_only.get_concrete_function(),
             "parse_transform": parse_and_transform.get_concrete_function(),
             "model": model_only.get_concrete_function()}

    peak = common.matmul_peak(sizes.matmul_n, sizes.matmul_seconds)
    rows: dict[int, dict[str, Any]] = {}
    for n in sizes.candidates:
        index = np.arange(n) % len(pool)
        examples = tf.constant([pool[i] for i in index])
        features = {k: tf.constant(v[index % len(v)]) for k, v in transformed.items()}
        calls = {part: (fn, features if part == "model" else examples) for part, fn in parts.items()}
        timing = time_calls(calls, sizes.repeats, sizes.min_repeats, sizes.seconds_per_size)
        row: dict[str, Any] = {"calls": {k: len(v) for k, v in timing.items()}}
        for part, times in timing.items():
            row[f"{part}_p50_ms"] = common.percentile_ms(times, 50)
            row[f"{part}_p99_ms"] = common.percentile_ms(times, 99)
        p50 = row["serving_p50_ms"] / 1e3
        row["candidates_per_second"] = n / p50
        row["model_flops_per_second"] = n * 2.0 * macs / p50
        row["share_of_matmul_peak"] = row["model_flops_per_second"] / peak["flops_best"]
        row["parse_share_of_serving"] = row["parse_p50_ms"] / row["serving_p50_ms"]
        row["transform_p50_ms_derived"] = row["parse_transform_p50_ms"] - row["parse_p50_ms"]
        row["model_p50_ms_derived"] = row["serving_p50_ms"] - row["parse_transform_p50_ms"]
        rows[n] = row

    table = Table("`serving_default` in process, by candidates per request",
                  ["candidates", "p50 ms", "p99 ms", "candidates/s", "model FLOP/s", "share of matmul peak"])
    for n, r in rows.items():
        table.rows.append([n, f"{r['serving_p50_ms']:.2f}", f"{r['serving_p99_ms']:.2f}",
                           f"{r['candidates_per_second']:,.0f}", si(r["model_flops_per_second"], "FLOP/s"),
                           f"{100 * r['share_of_matmul_peak']:.3f} %"])
    parts_table = Table("Where a request's time goes (p50 ms; each part timed on its own, in turn with the "
                        "others, on the same batch)",
                        ["candidates", "serving_default", "parse_example alone", "parse share",
                         "parse + Transform", "Transform (derived)", "model alone",
                         "model (derived: serving − parse+Transform)"])
    for n, r in rows.items():
        parts_table.rows.append([n, f"{r['serving_p50_ms']:.2f}", f"{r['parse_p50_ms']:.2f}",
                                 f"{100 * r['parse_share_of_serving']:.0f} %",
                                 f"{r['parse_transform_p50_ms']:.2f}",
                                 f"{r['transform_p50_ms_derived']:.2f}", f"{r['model_p50_ms']:.2f}",
                                 f"{r['model_p50_ms_derived']:.2f}"])
    notes = [
        f"Model: default mmoe trained {sizes.steps} steps on {sizes.impressions} simulated impressions "
        "(latency does not depend on the weights' quality), exported with export_model and loaded with "
        f"tf.saved_model.load ({export_seconds:.0f} s to export).",
        f"{2 * macs:,} FLOPs per candidate (2 × {macs:,} multiply-adds from multiplications_per_example); "
        f"peak {si(peak['flops_best'], 'FLOP/s')} from a {peak['n']}×{peak['n']} float32 matmul in the "
        "same run.",
        f"Each size: 3 warm-up calls per part, then up to {sizes.repeats} rounds of one call of each part "
        f"in turn (at least {sizes.min_repeats}, stopping after {sizes.seconds_per_size:g} s); the calls "
        "per part are in the JSON. p99 over fewer than 100 calls is close to the maximum.",
        "Parts: parse_example with the served parse spec; parse + the Transform layer "
        "(tft_output.transform_features_layer(), in process, as inside the signature); the Keras model "
        "on transformed features (position missing). Each part is a concrete function returning one "
        "scalar (parse, parse+Transform) or the served outputs (model); the subtractions carry the noise of "
        "two measurements and can come out negative for tiny requests.",
        "Requests reuse the eval split's examples (cycled when a request needs more candidates than there "
        "are), each a different user/candidate row, so vocabulary lookups are realistic.",
    ]

    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        ns = list(rows)
        styles = {"serving": "o-", "parse": "s--", "parse_transform": "d--", "model": "^--"}
        for part, style in styles.items():
            ax1.plot(ns, [rows[n][f"{part}_p50_ms"] for n in ns], style, label=f"{part} p50")
        ax1.plot(ns, [rows[n]["serving_p99_ms"] for n in ns], "o:", label="serving p99")
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        ax1.set_xlabel("candidates per request")
        ax1.set_ylabel("latency, ms")
        ax1.legend()
        ax2.plot(ns, [rows[n]["candidates_per_second"] for n in ns], "o-")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("candidates per request")
        ax2.set_ylabel("candidates / s (at p50)")
        fig.suptitle("serving_default in process (default mmoe)")

    return BenchmarkResult(
        name=NAME,
        title="Serving speed: serving_default latency by candidates per request",
        parameters={**sizes.__dict__, "architecture": config.model.architecture},
        figures={"by_candidates": rows, "multiply_adds_per_candidate": macs, "matmul_peak": peak,
                 "export_seconds": export_seconds, "train_seconds": trained.seconds},
        tables=[table, parts_table],
        plots=[Plot("latency", "p50/p99 latency of serving_default, tf.io.parse_example alone and the model "
                    "alone (left); candidates/s (right)", draw, size=(11.0, 4.5))],
        notes=notes,
    )
