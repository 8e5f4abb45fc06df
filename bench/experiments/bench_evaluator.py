"""Evaluator wall time vs a count-only TFMA pass over the same examples and model (issue 15 §2).

    .venv/bin/python -m bench.experiments.bench_evaluator --model M --baseline B --eval-dir D \\
        [--config C.yaml] [--examples 50000] [--rounds 3] [--full-tfma-examples 0] [--json out.json]

M and B: SavedModel folders with `serving_default` (a run's `tfx/Trainer/model/<id>/Format-Serving`);
D: a folder of (gzipped) TFRecord tf.Examples, e.g. a run's `.../Split-eval`. The rows of D are
replicated to `--examples` rows, each replica with its own request ids (so NDCG sees requests
of the original size), into one gzipped file read by both contenders. Per round, interleaved
so that machine load affects both alike:

- tfma_count: `tfma.run_model_analysis` with ExampleCount only on the overall slice, the
  candidate model's serving_default, on Beam's DirectRunner with the pipeline's flags: the
  floor of any TFMA evaluation (the issue's reference);
- watchnext: the Evaluator's work (components/evaluator): load both models, score every row
  with both in batches, compute every metric, slice, NDCG per request and the paired comparison.

`--full-tfma-examples N` also times the old Evaluator's TFMA config (pipeline/eval_config.py:
every head and slice, NDCG, with the baseline) on the first N rows, once (it costs ~9 ms an
example). Prints one JSON line per measurement and a summary; figures are wall seconds.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import tempfile
import time

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.components.evaluator.component import Scorer, score
from watchnext.components.evaluator.metrics import evaluate
from watchnext.core.config import Config, load_config
from watchnext.core.contract import SERVING_SIGNATURE
from watchnext.pipeline import beam

import tensorflow as tf


def replicate(eval_dir: str, rows: int, out_path: str, request_id: str) -> int:
    """Write `rows` examples cycling over eval_dir's, request ids suffixed per replica."""
    files = sorted(glob.glob(os.path.join(eval_dir, "*")))
    records = [r.numpy() for r in tf.data.TFRecordDataset(
        files, compression_type="GZIP" if files[0].endswith(".gz") else "")]
    written = 0
    with tf.io.TFRecordWriter(out_path, "GZIP") as writer:
        replica = 0
        while written < rows:
            for raw in records:
                if written == rows:
                    break
                example = tf.train.Example.FromString(raw)
                if request_id:
                    feature = example.features.feature[request_id].bytes_list
                    feature.value[0] = feature.value[0] + f"-r{replica}".encode()
                writer.write(example.SerializeToString())
                written += 1
            replica += 1
    return written


def run_watchnext(config: Config, path: str, model: str, baseline: str) -> tuple[float, dict]:
    start = time.time()
    scored = score(config, [path], Scorer(model), Scorer(baseline), config.evaluation.batch_size)
    result = evaluate(config, scored)
    return time.time() - start, result


def run_tfma(config: Config, path: str, model: str, baseline: str | None, full: bool) -> float:
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions

    if full:
        from watchnext.pipeline.eval_config import make_eval_config

        eval_config = make_eval_config(config)
        candidate = eval_config.model_specs[0]
        candidate.name = "candidate"
        base = tfma.ModelSpec()
        base.CopyFrom(candidate)
        base.name, base.is_baseline = "baseline", True
        del eval_config.model_specs[:]
        eval_config.model_specs.extend([candidate, base])
        shared = [tfma.default_eval_shared_model(m, eval_config=eval_config, model_name=n)
                  for m, n in ((model, "candidate"), (baseline, "baseline"))]
    else:
        eval_config = tfma.EvalConfig(
            model_specs=[tfma.ModelSpec(signature_name=SERVING_SIGNATURE,
                                        label_keys={h.name: h.label for h in config.heads})],
            metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="ExampleCount")])],
            slicing_specs=[tfma.SlicingSpec()])
        shared = tfma.default_eval_shared_model(model, eval_config=eval_config)
    start = time.time()
    with tempfile.TemporaryDirectory() as out:
        tfma.run_model_analysis(eval_shared_model=shared, eval_config=eval_config, data_location=path,
                                output_path=out,
                                pipeline_options=PipelineOptions(beam.beam_pipeline_args(config)))
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--eval-dir", required=True)
    parser.add_argument("--config")
    parser.add_argument("--examples", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full-tfma-examples", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    config = load_config(args.config)
    figures: dict = {"examples": args.examples, "rounds": []}
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "eval.tfrecord.gz")
        replicate(args.eval_dir, args.examples, path, config.features.request_id)
        for i in range(args.rounds):
            t_tfma = run_tfma(config, path, args.model, None, full=False)
            t_ours, result = run_watchnext(config, path, args.model, args.baseline)
            row = {"round": i, "tfma_count_s": round(t_tfma, 2), "watchnext_s": round(t_ours, 2),
                   "ratio": round(t_ours / t_tfma, 3), "examples_scored": result["examples"]}
            print(json.dumps(row), flush=True)
            figures["rounds"].append(row)
        if args.full_tfma_examples:
            small = os.path.join(work, "small.tfrecord.gz")
            replicate(args.eval_dir, args.full_tfma_examples, small, config.features.request_id)
            t_full = run_tfma(config, small, args.model, args.baseline, full=True)
            t_ours, _ = run_watchnext(config, small, args.model, args.baseline)
            figures["full_tfma"] = {"examples": args.full_tfma_examples, "tfma_full_s": round(t_full, 2),
                                    "watchnext_s": round(t_ours, 2)}
            print(json.dumps(figures["full_tfma"]), flush=True)
    rounds = figures["rounds"]
    keys = ("tfma_count_s", "watchnext_s", "ratio")
    figures["median"] = {k: statistics.median(r[k] for r in rounds) for k in keys}
    print(json.dumps(figures["median"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
