"""The closed loop: the daily job trains on logs its own previous model produced.

Day d: the simulated users are served by the newest pushed model (before the first push:
the world's logging policy); their responses are the day's logs (span d); the daily job
(the pipeline on span d: window, warm start, blessing, push, as `watchnext backfill` runs
it) trains tomorrow's model on them. This feedback is what the paper's selection bias is
about: a model's own ranking decides which positions its training data show it.

Each day also records what users truly got from the day's ranking: the expectations under
the simulator's truth (clicks, watch time, likes per request, dismissals per impression)
over the day's ranked requests (exploration requests, shown in random order, excluded).

Deterministic and resumable: day d's traffic comes from the world's day-d random stream;
the state (`<output>/closed_loop.json`) records each day's policy before the day is
simulated, and the day's results after its daily job, so a loop that stopped part-way
resumes with the same policy for the unfinished day and writes the same logs.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from watchnext.core import log_schema as schema
from watchnext.simulator.params import SimulatorParams
from watchnext.simulator.policy import RankingPolicy
from watchnext.simulator.simulate import logging_policy, simulate, span_of_day

import numpy as np

log = logging.getLogger(__name__)

STATE_FILE = "closed_loop.json"
LOGS_FOLDER = "closed_loop_logs"
# The policy of a day before any model was pushed.
LOGGING = "logging"
# The true metrics of a day: name → (truth per impression, per request or per impression).
TRUE_METRICS = ("true_clicks_per_request", "true_watch_time_per_request", "true_likes_per_request",
                "true_dismiss_rate")

# (config, logs folder, span) → the folder of the model serving after the day's job (the
# newest pushed version), or None while nothing was ever pushed.
DailyJob = Callable[[Any, str, int], "str | None"]
# A model folder (or LOGGING) → the ranking policy serving with it.
PolicyFactory = Callable[[str], RankingPolicy]


def truth_metrics(logs_dir: str, span: str) -> dict[str, float]:
    """The day's true engagement and satisfaction, from its truth log (ranked requests only)."""
    files = sorted(glob.glob(os.path.join(logs_dir, "truth", f"span={span}", "*.jsonl.gz")))
    if not files:
        raise FileNotFoundError(f"no truth log for span {span} in {logs_dir} (jsonl logs are needed)")
    keys, clicks, watch, likes, dismiss = [], [], [], [], []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r["shuffled"]:
                    continue
                p_clicked = r["examination"] * r["p_click"]
                keys.append(r[schema.REQUEST_ID])
                clicks.append(p_clicked)
                watch.append(r["expected_watch_time"])
                likes.append(p_clicked * r["p_like"])
                dismiss.append(r["examination"] * r["p_dismiss"])
    n_requests = len(set(keys))
    if not n_requests:
        raise ValueError(f"span {span} in {logs_dir} has no ranked (unshuffled) request")
    return {"true_clicks_per_request": float(np.sum(clicks)) / n_requests,
            "true_watch_time_per_request": float(np.sum(watch)) / n_requests,
            "true_likes_per_request": float(np.sum(likes)) / n_requests,
            "true_dismiss_rate": float(np.mean(dismiss)),
            "ranked_requests": n_requests}


def _load_state(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {"days": {}}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _save_state(path: str, state: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def run_closed_loop(config: Any, world: SimulatorParams, days: int, daily_job: DailyJob | None = None,
                    policy_for: PolicyFactory | None = None,
                    progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run (or resume) `days` days of the closed loop into config.pipeline.output_dir.

    Returns one record per day: span, the policy that served it, its true metrics, and the
    model serving after the day's job (`pushed`). `daily_job` and `policy_for` default to the real pipeline
    (`backfill` of the one span) and a ServedModelPolicy with the config's score weights.
    """
    if days < 1:
        raise ValueError(f"closed loop days={days}: must be >= 1")
    if world.log_format != "jsonl":
        raise ValueError("the closed loop reads the truth log as JSON Lines: set log_format to jsonl")
    daily_job = daily_job or _backfill_one_span
    policy_for = policy_for or _served_policy_factory(config, world)
    say = progress or log.info
    out = config.pipeline.output_dir
    os.makedirs(out, exist_ok=True)
    state_path = os.path.join(out, STATE_FILE)
    logs_dir = os.path.join(out, LOGS_FOLDER)
    state = _load_state(state_path)
    world_dict = json.loads(json.dumps(dataclasses.asdict(world)))
    if state.setdefault("world", world_dict) != world_dict:
        raise ValueError(f"{state_path} is a closed loop of another simulated world; resume it with the "
                         "same parameters or use another output folder")
    current = LOGGING
    t0, ran = time.time(), 0
    for d in range(days):
        span = span_of_day(world, d)
        record = state["days"].get(str(d))
        if record and record.get("done"):
            current = record["pushed"] or record["policy"]
            continue
        policy_name = record["policy"] if record else current
        state["days"][str(d)] = {"day": d, "span": span, "policy": policy_name, "done": False}
        _save_state(state_path, state)
        policy = logging_policy(world) if policy_name == LOGGING else policy_for(policy_name)
        simulate(logs_dir, world, policy=policy, only_days=[d])
        pushed = daily_job(config, logs_dir, int(span))
        state["days"][str(d)].update(truth_metrics(logs_dir, span))
        state["days"][str(d)].update(pushed=pushed, done=True)
        _save_state(state_path, state)
        current = pushed or policy_name
        ran += 1
        elapsed = time.time() - t0
        eta = elapsed / ran * (days - d - 1)
        say(f"closed loop day {d + 1}/{days} (span {span}, served by {os.path.basename(policy_name)}): "
            f"true clicks/request {state['days'][str(d)]['true_clicks_per_request']:.3f}, "
            f"pushed {pushed or 'nothing'}; {elapsed:.0f}s, ETA {eta:.0f}s")
    return [state["days"][str(d)] for d in range(days)]


def _backfill_one_span(config: Any, logs_dir: str, span: int) -> str | None:
    """The daily job on one span, as `watchnext backfill --from span --to span` runs it (a
    span it finished before is not run again); then the newest pushed version.

    Its data gate reports anomalies without stopping the day (validation.fail_on_anomalies
    false): each day is served by another model, so the labels' distributions move from one
    day to the next by design (a served model's first day moved watch time's Jensen-Shannon
    divergence to 0.2, past the 0.1 bound), and a loop that stopped there would measure nothing.
    """
    from watchnext.components.atomic_pusher import version_dirs
    from watchnext.pipeline.local_runner import backfill

    if config.validation.fail_on_anomalies:
        log.info("closed loop: the daily job's data gate logs anomalies instead of stopping the day "
                 "(policies change between days, and the labels' distributions with them)")
        config = config.replace(validation=dataclasses.replace(config.validation, fail_on_anomalies=False))
    backfill(config.with_data_path(logs_dir), logs_dir, span, span)
    root = os.path.join(config.serving_dir, config.serving.model_name)
    versions = version_dirs(root)
    return os.path.join(root, str(versions[-1])) if versions else None


def _served_policy_factory(config: Any, world: SimulatorParams) -> PolicyFactory:
    def make(model_dir: str) -> RankingPolicy:
        from watchnext.experiment.served import ServedModelPolicy

        return ServedModelPolicy(model_dir, config.head_names, [h.score_weight for h in config.heads])

    return make
