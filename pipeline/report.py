"""A Markdown summary of the newest evaluation: per head, per slice, ranking, and the verdict.

The Evaluator (components/evaluator) writes its metrics as JSON; an unattended daily
job needs a file a person can read in a terminal or a code review. `write_report`
renders the newest ModelEvaluation in ML Metadata as `<output>/report.md`: a header (model,
baseline, spans, example counts, the training budget it ran, the blessing thresholds), the
paired comparison with the served model (what decided the blessing), the Evaluator's notes
(what it skipped and why, e.g. NDCG when every request has one candidate), then one table per
head with its slices and its ROC/calibration plot, NDCG per request, the learned position
bias and the gates (PNGs in `report_plots/` beside the report). Slices without rows are
not in the JSON, and NDCG is never sliced by position (a position slice cuts requests apart).
"""

from __future__ import annotations

import math
import os
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.components.evaluator.metrics import OVERALL
from watchnext.core.config import Config

# Columns per head type: (metric name in metrics.json, column title).
BINARY_COLUMNS = (("auc", "AUC"), ("log_loss", "log loss"), ("calibration", "calibration"),
                  ("mean_prediction", "mean pred"), ("mean_label", "mean label"), ("n", "n"))
REGRESSION_COLUMNS = (("mse", "MSE"), ("mae", "MAE"), ("calibration", "calibration"),
                      ("mean_prediction", "mean pred"), ("mean_label", "mean label"), ("n", "n"))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _sort_key(name: str) -> tuple[int, str, float, str]:
    """overall first, then by feature, numeric values (and position buckets) in order."""
    if name == OVERALL:
        return (0, "", 0.0, "")
    feature, _, value = name.partition("=")
    try:
        return (1, feature, float(value.split("-")[0].rstrip("+")), value)
    except ValueError:
        return (1, feature, float("inf"), value)


def _comparison_lines(config: Config, metrics: dict[str, Any]) -> list[str]:
    comparison = metrics.get("comparison")
    if not comparison:
        return ["No baseline (first push): only the absolute floors were checked.", ""]
    e = config.evaluation
    conf = f"{metrics.get('confidence', e.confidence):.0%}"
    lines = [f"## Candidate vs the served model (same rows, paired, {conf} one-sided bounds)", "",
             "| head | metric | candidate | served | difference | se | bound | refused if bound |",
             "|---|---|---|---|---|---|---|---|"]
    for head in config.heads:
        c = comparison.get(head.name)
        if not c:
            continue
        if head.type == "binary":
            lines.append(f"| {head.name} | AUC (DeLong) | {_fmt(c['candidate'])} | {_fmt(c['baseline'])} "
                         f"| {_signed(c['diff'])} | {_fmt(c['se'])} | upper {_signed(c['upper'])} "
                         f"| < {-e.max_auc_drop:g} |")
        else:
            lines.append(f"| {head.name} | MSE ratio (delta method, se of log) | {_fmt(c['candidate'])} "
                         f"| {_fmt(c['baseline'])} | ×{_fmt(c['diff'])} | {_fmt(c['se'])} "
                         f"| lower ×{_fmt(c['lower'])} | > ×{1 + e.max_mse_increase_ratio:g} |")
    return [*lines, ""]


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.4f}"


def _ranking_lines(ranking: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    names = sorted({m for per_slice in ranking.values() for m in per_slice})
    paired = any("diff" in v for per_slice in ranking.values() for v in per_slice.values())
    lines = ["## Ranking by `score` within each request (NDCG@k, gain = label)", "",
             "Averaged over the requests with two or more candidates and some gain (NDCG is undefined "
             "without gain, and 1 by construction for a single candidate)"
             + ("; Δ is the candidate minus the served model, ± its standard error." if paired else "."), "",
             "| slice | requests | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for s in sorted(ranking, key=_sort_key):
        per_slice = ranking[s]
        requests = max(v["requests"] for v in per_slice.values())
        cells = []
        for m in names:
            v = per_slice.get(m)
            cell = _fmt(v["candidate"]) if v else "–"
            if v and v.get("diff") is not None:
                cell += f" (Δ {_signed(v['diff'])} ± {_fmt(v['se'])})"
            cells.append(cell)
        lines.append(f"| {s} | {requests} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _header_lines(config: Config, metrics: dict[str, Any], model_uri: str,
                  training: dict[str, Any] | None) -> list[str]:
    """What was evaluated: model, baseline, spans, example counts, training budget, thresholds."""
    rows = []
    if model_uri:
        rows.append(("model", f"`{model_uri}`"))
    if metrics:
        baseline = metrics.get("baseline_model")
        rows.append(("baseline", f"`{baseline}` (the served model)" if baseline else "none (first push)"))
        spans = ", ".join(str(s) for s in metrics.get("spans", []) if s is not None)
        if spans:
            rows.append(("spans", spans))
    counts = []
    if training and training.get("train_examples"):
        counts.append(f"{training['train_examples']:,} train (as the Trainer read them)")
    if metrics:
        counts.append(f"{metrics['examples']:,} eval")
    if counts:
        rows.append(("examples", ", ".join(counts)))
    if training:
        epochs = f" = {training['epochs']:g} epochs" if training.get("epochs") is not None else ""
        rows.append(("training", f"{training['steps']:,} steps of {training['batch_size']:,}{epochs}; "
                     f"weights of step {training['best_step']:,}; {training['stop_reason']}"))
    e = config.evaluation
    floors = ", ".join(f"{h.name} {'AUC ≥' if h.type == 'binary' else 'MSE ≤'} {h.value_threshold:g}"
                       for h in config.heads if h.value_threshold > 0)
    rows.append(("blessing", f"floors: {floors or 'none'}; vs the served model, refused only if worse by "
                 f"more than AUC {e.max_auc_drop:g} or MSE ×{1 + e.max_mse_increase_ratio:g} "
                 f"at {e.confidence:.0%} one-sided confidence"))
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]


def render(config: Config, metrics: dict[str, Any], verdict: str, model_uri: str = "",
           utilization: dict[str, Any] | None = None, training: dict[str, Any] | None = None,
           plots: dict[str, str] | None = None) -> str:
    """The report as Markdown from the Evaluator's metrics.json (an empty dict: no metric tables).

    `training` is the Trainer's training.json (models/run_summary.py); `plots` maps a head
    name, "position" or "gates" to a PNG path relative to the report (pipeline/report_plots.py).
    """
    plots = plots or {}
    lines = ["# watchnext evaluation", "", f"**Verdict:** {verdict}", ""]
    model_uri = model_uri or metrics.get("candidate_model", "")
    lines += _header_lines(config, metrics, model_uri, training)
    if metrics:
        lines += _comparison_lines(config, metrics)
    if metrics.get("notes"):
        lines += [*(f"> {note}." for note in metrics["notes"]), ""]
    if metrics and config.features.position:
        lines += ["The served model ignores position; the position slices show where selection bias "
                  "lives in the logged labels.", ""]
    for head in config.heads:
        per_slice = metrics.get("heads", {}).get(head.name, {}).get("slices")
        if not per_slice:
            continue
        columns = BINARY_COLUMNS if head.type == "binary" else REGRESSION_COLUMNS
        note = f" (only where `{head.presence}` = 1)" if head.presence else ""
        lines += [f"## {head.name} ({head.type}){note}", "",
                  "| slice | " + " | ".join(title for _, title in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for s in sorted(per_slice, key=_sort_key):
            values = per_slice[s]
            lines.append(f"| {s} | " + " | ".join(_fmt(values.get(k)) for k, _ in columns) + " |")
        lines.append("")
        if head.name in plots:
            lines += [f"![{head.name}: ROC and calibration, overall]({plots[head.name]})", ""]
    if metrics.get("ranking"):
        lines += _ranking_lines(metrics["ranking"])
    if "position" in plots:
        lines += ["## Learned position bias", "",
                  "The shallow tower's bias logit by position and device, added to the position-biased "
                  "heads in training and absent at serving.", "",
                  f"![learned position bias]({plots['position']})", ""]
    if utilization:
        lines += _utilization_lines(utilization)
        if "gates" in plots:
            lines += [f"![mean gate weight per expert]({plots['gates']})", ""]
    return "\n".join(lines)


def last_position_seen(metrics: dict[str, Any]) -> int | None:
    """The highest position of the Evaluator's position slices with rows ("position=5-9" → 9);
    None when an open bucket ("position=10+") has rows or there are no position slices."""
    last = None
    for head in metrics.get("heads", {}).values():
        for name, row in head.get("slices", {}).items():
            if not name.startswith("position=") or not row.get("n"):
                continue
            bucket = name.split("=", 1)[1]
            if bucket.endswith("+"):
                return None
            high = int(bucket.split("-")[-1])
            last = high if last is None else max(last, high)
    return last


def draw_plots(config: Config, metrics: dict[str, Any], out_dir: str, utilization: dict[str, Any] | None,
               training: dict[str, Any] | None) -> dict[str, str]:
    """Write the report's PNGs into `out_dir`/report_plots; {key: relative path} of those drawn."""
    from watchnext.pipeline import report_plots

    drawn: dict[str, str | None] = {}
    for head in config.heads:
        curves = metrics.get("heads", {}).get(head.name, {}).get("curves")
        if curves:
            drawn[head.name] = report_plots.head_plot(out_dir, head.name, head.type, curves)
    drawn["position"] = report_plots.position_plot(out_dir, (training or {}).get("position_curve"),
                                                   last_position_seen(metrics))
    drawn["gates"] = report_plots.gates_plot(out_dir, utilization)
    return {k: v for k, v in drawn.items() if v}


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
    from watchnext.components.evaluator import read_metrics
    from watchnext.models import run_summary
    from watchnext.pipeline.metadata import latest_blessing, latest_model_run, latest_utilization, newest_uri

    evaluation = newest_uri(metadata_path, "ModelEvaluation")
    if evaluation is None:
        raise FileNotFoundError(f"no evaluation recorded in {metadata_path}; run the pipeline first")
    verdict = latest_blessing(metadata_path).reason
    metrics = read_metrics(evaluation)
    utilization = latest_utilization(metadata_path)
    run = latest_model_run(metadata_path)
    training = run_summary.read(run) if run else None
    out_path = out_path or os.path.join(config.pipeline.output_dir, "report.md")
    plots = draw_plots(config, metrics, os.path.dirname(os.path.abspath(out_path)), utilization, training)
    text = render(config, metrics, verdict, utilization=utilization, training=training, plots=plots)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    return out_path
