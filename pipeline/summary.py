"""What `watchnext run` prints last: the verdict, each head's served metric, where things are, what next.

A run's log is long; its end should answer the questions a person asks first (is a new
model served, how good is it, where is it, how do I try it) without opening report.md.
Pure functions of the Evaluator's metrics.json and a few paths, so tests build the input.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from watchnext.components.evaluator.metrics import OVERALL
from watchnext.core.config import Config

# A served binary head below this AUC is near chance: the advice is more data or steps.
NEAR_CHANCE_AUC = 0.55


def relax_key(config: Config, failure: str) -> str:
    """The config key that a failed blessing check reads (a failure names its head first)."""
    head_name = failure.split("/", 1)[0]
    index = next((i for i, h in enumerate(config.heads) if h.name == head_name), None)
    if "value_threshold" in failure and index is not None:
        return f"heads[{index}].value_threshold"
    if "(vs baseline)" in failure:
        ratio = "/mse" in failure
        return "evaluation.max_mse_increase_ratio" if ratio else "evaluation.max_auc_drop"
    return ""


def _head_line(config: Config, name: str, metrics: dict[str, Any]) -> str:
    head = config.head(name)
    overall = metrics["heads"][name]["slices"].get(OVERALL, {})
    key = "auc" if head.type == "binary" else "mse"
    value = overall.get(key)
    shown = f"{value:.4f}" if value is not None else "n/a"
    line = f"  {name:<12} {key.upper()} {shown}"
    line += f"  (n {overall.get('n', 0):,})"
    compared = (metrics.get("comparison") or {}).get(name)
    if compared and compared.get("baseline") is not None:
        if head.type == "binary":
            line += f"; served model {compared['baseline']:.4f}, difference {compared['diff']:+.4f}"
        else:
            line += f"; served model {compared['baseline']:.4g}, ratio ×{compared['diff']:.3f}"
    return line


def render(config: Config, metrics: dict[str, Any] | None, pushed_path: str | None, output_dir: str,
           model_run_dir: str | None = None, config_path: str | None = None) -> str:
    """The end-of-run summary as plain text lines. The commands it suggests carry `--config
    config_path` when the run had one: serving, ranking and the model name follow the config."""
    lines = ["", "── summary " + "─" * 60]
    if metrics is None:
        lines.append("verdict: no evaluation recorded (the run stopped before the Evaluator)")
        return "\n".join(lines)
    if pushed_path:
        verdict = f"blessed and pushed: {pushed_path}"
    elif metrics.get("blessed"):
        verdict = "blessed; the same model is already served (nothing new to push)"
    else:
        verdict = "NOT blessed: nothing pushed, the served model stays"
    lines.append(f"verdict: {verdict}")
    lines.append(f"per head, as served (no position), on {metrics.get('examples', 0):,} eval rows:")
    lines += [_head_line(config, h.name, metrics) for h in config.heads if h.name in metrics.get("heads", {})]
    if config.features.position:
        lines.append("  (the Trainer's logged eval AUCs include the shallow tower's position bias, so they "
                     "differ, usually upward; these are what serving sees)")
    if not metrics.get("blessed"):
        for failure in metrics.get("failures", []):
            key = relax_key(config, failure)
            lines.append(f"  failed: {failure}" + (f"  [config key {key}]" if key else ""))
    heads = metrics.get("heads", {})
    near_chance = [h.name for h in config.heads if h.type == "binary" and h.name in heads
                   and (heads[h.name]["slices"].get(OVERALL, {}).get("auc") or 1.0) < NEAR_CHANCE_AUC]
    if near_chance:
        lines.append(f"  {', '.join(near_chance)} near chance (AUC < {NEAR_CHANCE_AUC}): more data or "
                     "training steps (training.epochs), rather than looser thresholds")
    report = os.path.join(output_dir, "report.md")
    lines.append(f"report: {report}")
    if model_run_dir:
        lines.append(f"TensorBoard logs: {model_run_dir}")
    out = (f" --config {shlex.quote(config_path)}" if config_path else "") + f" --output {output_dir}"
    lines.append("next:")
    if config.log_schema.is_default:
        lines.append(f"  watchnext rank --request serving/sample_request.json{out}")
    else:  # the sample request holds the default schema's fields
        lines.append(f"  watchnext rank --request REQUEST.json{out}   # REQUEST.json: your features, "
                     "see docs/serving.md")
    lines.append(f"  watchnext check-serving{out}")
    if model_run_dir:
        lines.append(f"  tensorboard --logdir {model_run_dir}")
    return "\n".join(lines)
