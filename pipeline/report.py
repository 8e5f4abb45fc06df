"""A Markdown summary of the newest evaluation: per head, per slice, and the verdict.

TFMA's results are protos meant for notebooks; an unattended daily job needs a file a
person can read in a terminal or a code review. `write_report` renders the newest
ModelEvaluation in ML Metadata as `<output>/report.md`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.pipeline.configs import Config
from watchnext.pipeline.eval_config import SCORE_OUTPUT

# Columns per head type: (TFMA metric name, column title).
BINARY_COLUMNS = (("auc", "AUC"), ("auc_pr", "PR-AUC"), ("log_loss", "log loss"),
                  ("calibration", "calibration"), ("example_count", "n"))
REGRESSION_COLUMNS = (("mean_squared_error", "MSE"), ("mean_absolute_error", "MAE"),
                      ("mean_prediction", "mean pred"), ("mean_label", "mean label"),
                      ("example_count", "n"))


def _slice_name(slice_key: Iterable[tuple[str, Any]]) -> str:
    parts = [f"{k}={v.decode() if isinstance(v, bytes) else v}" for k, v in slice_key]
    return ", ".join(parts) or "overall"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def metric_table(evaluation_uri: str) -> dict[str, dict[str, dict[str, float]]]:
    """{slice name: {output name: {metric name: value}}} of the candidate model."""
    import tensorflow_model_analysis as tfma

    table: dict[str, dict[str, dict[str, float]]] = {}
    for m in tfma.load_metrics(evaluation_uri):
        name = _slice_name(tfma.slicer.deserialize_slice_key(m.slice_key))
        for kv in m.metric_keys_and_values:
            key = kv.key
            if key.model_name == "baseline" or key.is_diff:
                continue
            if kv.value.HasField("double_value"):
                per_output = table.setdefault(name, {}).setdefault(key.output_name, {})
                metric = key.name
                if key.sub_key.HasField("top_k"):
                    metric += f"@{key.sub_key.top_k.value}"
                per_output[metric] = kv.value.double_value.value
    return table


def _sort_key(name: str) -> tuple[int, str, float]:
    if name == "overall":
        return (0, "", 0.0)
    feature, _, value = name.partition("=")
    try:
        return (1, feature, float(value))
    except ValueError:
        return (1, feature, float("inf"))


def render(config: Config, table: dict[str, dict[str, dict[str, float]]], verdict: str,
           model_uri: str = "", utilization: dict[str, Any] | None = None) -> str:
    """The report as Markdown: one table per head, rows are slices; then the gates."""
    lines = ["# watchnext evaluation", "", f"**Verdict:** {verdict}", ""]
    if model_uri:
        lines += [f"Candidate model: `{model_uri}`", ""]
    if config.features.position:
        lines += ["The served model ignores position; the position slices show where selection bias "
                  "lives in the logged labels.", ""]
    slices = sorted(table, key=_sort_key)
    for head in config.heads:
        columns = BINARY_COLUMNS if head.type == "binary" else REGRESSION_COLUMNS
        note = f" (only where `{head.presence}` = 1)" if head.presence else ""
        lines += [f"## {head.name} ({head.type}){note}", "",
                  "| slice | " + " | ".join(title for _, title in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for s in slices:
            values = table[s].get(head.name, {})
            if not values:
                continue
            lines.append(f"| {s} | " + " | ".join(_fmt(values.get(k)) for k, _ in columns) + " |")
        lines.append("")
    ranking = {s: table[s].get(SCORE_OUTPUT, {}) for s in slices if table[s].get(SCORE_OUTPUT)}
    if ranking:
        columns = sorted({m for values in ranking.values() for m in values if m.startswith("ndcg")})
        lines += ["## Ranking by `score` within each request (NDCG@k, gain = label)", "",
                  "| slice | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        lines += [f"| {s} | " + " | ".join(_fmt(v.get(c)) for c in columns) + " |"
                  for s, v in ranking.items()]
        lines.append("")
    if utilization:
        lines += _utilization_lines(utilization)
    return "\n".join(lines)


def _utilization_lines(summary: dict[str, Any]) -> list[str]:
    """The expert-utilization table (from the Trainer) and its alarms."""
    from watchnext.models.expert_utilization import alarms

    lines = [f"## Expert utilization ({summary['architecture']}, gate dropout {summary['gate_dropout']:g}, "
             f"{summary['examples']} eval examples)", "",
             f"Polarized: one expert gets > {summary['polarized_gate_weight']:g} of the gate's weight.", "",
             "| head | experts | polarized share | mean max weight | normalized entropy "
             "| mean weight per expert |", "|---|---|---|---|---|---|"]
    for head, st in summary["heads"].items():
        weights = ", ".join(f"{w:.2f}" for w in st["mean_weight_per_expert"])
        lines.append(f"| {head} | {st['experts']} | {st['polarized_share']:.0%} "
                     f"| {st['mean_max_weight']:.3f} | {_fmt(st['normalized_entropy'])} | {weights} |")
    found = alarms(summary)
    lines += ["", *(f"**ALARM** {a}" for a in found)] if found else ["", "No gate polarization alarm."]
    return [*lines, ""]


def write_report(config: Config, metadata_path: str, out_path: str | None = None) -> str:
    """Render the newest evaluation in ML Metadata to Markdown; return the file's path."""
    from watchnext.pipeline.local_runner import latest_blessing, latest_utilization, open_metadata

    store = open_metadata(metadata_path)
    evaluations = store.get_artifacts_by_type("ModelEvaluation")
    if not evaluations:
        raise FileNotFoundError(f"no evaluation recorded in {metadata_path}; run the pipeline first")
    evaluation = max(evaluations, key=lambda a: a.id)
    _, verdict = latest_blessing(metadata_path)
    text = render(config, metric_table(evaluation.uri), verdict,
                  utilization=latest_utilization(metadata_path))
    out_path = out_path or os.path.join(config.pipeline.output_dir, "report.md")
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    return out_path
