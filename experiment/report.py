"""An experiment's report as Markdown, and the served-model experiment end to end."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from watchnext.experiment.live import ExperimentParams, run_experiment

LOGGING_ARM = "logging"


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:+.2f}%"


def render(report: dict[str, Any], title: str = "Live experiment (simulated)") -> str:
    """Markdown: per metric each arm's value, and each arm's change from the control with its
    confidence interval (absolute and relative, as the paper's online tables state changes)."""
    control = report["control"]
    arms = list(report["arms"])
    others = [a for a in arms if a != control]
    level = f"{100 * report['params']['confidence']:g}%"
    lines = [f"# {title}", ""]
    lines.append(f"{report['params']['days']} simulated day(s), {report['params']['requests_per_day']} "
                 f"requests a day, seed {report['params']['seed']}; traffic split by user hash. "
                 f"Arms: " + ", ".join(f"`{a}` ({report['arms'][a]['users']} users, "
                                       f"{report['arms'][a]['requests']} requests)" for a in arms) + ".")
    lines.append(f"Changes are vs `{control}`, with {level} intervals from the per-user variance "
                 "(delta method); **bold** where the interval excludes 0. `true_*` metrics are the "
                 "expectations under the simulator's ground truth for the shown slates.")
    lines.append("")
    header = "| Metric | " + " | ".join(f"`{a}`" for a in arms) + " | " + " | ".join(
        f"`{a}` − `{control}` ({level} CI)" for a in others) + " |"
    lines += [header, "|" + "---|" * (1 + len(arms) + len(others))]
    for metric in report["metrics"]:
        cells = [_num(report["arms"][a]["metrics"][metric]["value"]) for a in arms]
        for a in others:
            d = report["differences"][a][metric]
            text = (f"{_pct(d['relative'])} [{_pct(d['relative_ci_low'])}, {_pct(d['relative_ci_high'])}]"
                    f" (Δ {_num(d['delta'])})")
            cells.append(f"**{text}**" if d["significant"] else text)
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines += ["", "Metrics: " + "; ".join(f"`{m}`: {what}" for m, what in report["metrics"].items()) + "."]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], output_dir: str, name: str = "experiment") -> tuple[str, str]:
    """Write <output_dir>/<name>.json and .md; return their paths."""
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, f"{name}.json")
    md_path = os.path.join(output_dir, f"{name}.md")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, default=list)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(render(report))
    return json_path, md_path


def served_experiment(control_dir: str, treatment_dir: str, config: Any,
                      params: ExperimentParams) -> dict[str, Any]:
    """Control and treatment are pushed SavedModels, ranked through serving_default with the
    config's score weights; the world is the one the config simulates (the one the models
    were trained on); the world's logging policy is a third, reference arm."""
    from watchnext.experiment.served import ServedModelPolicy
    from watchnext.simulator.simulate import logging_policy, params_from_data_config

    world = params_from_data_config(config.data)
    weights = [h.score_weight for h in config.heads]
    arms = {
        "control": ServedModelPolicy(control_dir, config.head_names, weights),
        "treatment": ServedModelPolicy(treatment_dir, config.head_names, weights),
        LOGGING_ARM: logging_policy(world),
    }
    report = run_experiment(arms, world, params, control="control")
    report["models"] = {"control": control_dir, "treatment": treatment_dir}
    return report
