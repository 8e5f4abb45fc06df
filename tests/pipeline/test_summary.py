"""The end-of-run summary: verdict, served metric per head, where things are, and commands that parse."""

from __future__ import annotations

import shlex

from watchnext.cli import build_parser
from watchnext.core.config import Config
from watchnext.pipeline import summary

CONFIG = Config()


def _metrics(aucs: dict[str, float], failures: list[str] | None = None,
             baseline: float | None = None) -> dict:
    heads = {}
    for h in CONFIG.heads:
        overall = ({"auc": aucs.get(h.name, 0.7), "n": 3670} if h.type == "binary"
                   else {"mse": 2.5, "n": 3670})
        heads[h.name] = {"type": h.type, "slices": {"overall": overall}}
    comparison = None
    if baseline is not None:
        comparison = {h.name: ({"baseline": baseline, "diff": aucs.get(h.name, 0.7) - baseline}
                               if h.type == "binary" else {"baseline": 2.4, "diff": 2.5 / 2.4})
                      for h in CONFIG.heads}
    return {"examples": 3670, "heads": heads, "comparison": comparison,
            "blessed": not failures, "failures": failures or []}


def test_a_pushed_model_shows_each_heads_served_metric_paths_and_commands_that_parse():
    text = summary.render(CONFIG, _metrics({"click": 0.6123}, baseline=0.6), "out/serving/watchnext/7", "out",
                          "out/tfx/Trainer/model_run/9")
    assert "verdict: blessed and pushed: out/serving/watchnext/7" in text
    assert "click        AUC 0.6123  (n 3,670); served model 0.6000, difference +0.0123" in text
    assert "watch_time   MSE 2.5000" in text and "ratio ×1.042" in text
    assert "report: out/report.md" in text and "TensorBoard logs: out/tfx/Trainer/model_run/9" in text
    assert "position bias" in text  # the Trainer's AUC vs the served one, explained
    commands = [line.strip() for line in text.splitlines()
                if line.strip().startswith(("watchnext ", "tensorboard "))]
    assert [c.split()[1] for c in commands] == ["rank", "check-serving", "--logdir"]
    for command in commands:
        if command.startswith("watchnext "):
            build_parser().parse_args(shlex.split(command)[1:])  # exits (fails the test) if it does not parse


def test_not_blessed_names_the_config_key_to_relax_for_each_failure():
    failures = ["click/auc = 0.5312 on overall, needs value_threshold: >= 0.55",
                "like/auc (vs baseline) = -0.0400 (0.6000 vs 0.6400, se 0.0100, 95% upper bound -0.0236) on "
                "overall, needs change_threshold: upper bound >= -0.01",
                "rating/mse (vs baseline) = ×1.3000 (3.2 vs 2.5, 95% lower bound ×1.2000) on overall, needs "
                "change_threshold: lower bound <= ×1.1"]
    text = summary.render(CONFIG, _metrics({"click": 0.5312}, failures, baseline=0.64), None, "out")
    assert "verdict: NOT blessed" in text
    assert "[config key heads[0].value_threshold]" in text
    assert "[config key evaluation.max_auc_drop]" in text
    assert "[config key evaluation.max_mse_increase_ratio]" in text
    assert "click near chance" in text and "more data or training steps" in text


def test_no_near_chance_advice_for_a_good_model_and_a_note_when_nothing_was_evaluated():
    assert "near chance" not in summary.render(CONFIG, _metrics({}), "p", "out")
    assert "no evaluation recorded" in summary.render(CONFIG, None, None, "out")


def test_the_suggested_commands_carry_the_runs_config_and_a_declared_schema_gets_no_sample_request():
    """A run with --config (here the item-ratings log) suggests commands with that config: `rank`
    reads the model name and the request's fields from it, and the shipped sample request holds the
    default schema's fields, so it is not suggested for another schema."""
    import os

    from watchnext.core.config import load_config

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "configs", "item_ratings.yaml")
    ratings = load_config(path)
    metrics = {"examples": 10, "blessed": True, "failures": [], "heads": {
        "liked": {"type": "binary", "slices": {"overall": {"auc": 0.78, "n": 10}}},
        "rating": {"type": "regression", "slices": {"overall": {"mse": 0.9, "n": 10}}}}}
    text = summary.render(ratings, metrics, "out/serving/item_ratings/1", "out", config_path=path)
    rank = next(line.split("#")[0].strip() for line in text.splitlines()
                if line.strip().startswith("watchnext rank"))
    assert f"--config {path}" in rank and "sample_request.json" not in rank
    args = build_parser().parse_args(shlex.split(rank)[1:])
    assert args.config == path
    default = summary.render(CONFIG, _metrics({}), "p", "out")
    assert "--config" not in default and "serving/sample_request.json" in default
