"""A live experiment in the simulated world: arms rank real-looking traffic, users respond.

Simulated users send requests (drawn as the simulator draws a logged day's); each request
goes to the arm of its user (experiment/arms.py); the arm's ranking policy orders the
candidate pool; the users' responses to the shown order are drawn from the world's ground
truth by the same code that draws a logged day's (simulator/responses.py). Per arm and
metric the result is a ratio over users with its standard error (experiment/stats.py), and
each arm's difference from the control with confidence intervals, as the paper's online
tables report engagement and satisfaction changes.

Experiment days follow the days the models were trained on (day index = the world's
logged days + d), so the candidates' ages and view counts move on as they would in
production; the traffic of experiment day d comes from its own random stream (the
experiment seed, not the world's), so a rerun with the same seed gives the same numbers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from watchnext.experiment.arms import assign_arms
from watchnext.experiment.stats import difference, ratio_estimate
from watchnext.simulator.params import SimulatorParams
from watchnext.simulator.policy import RankingPolicy, choose_slates
from watchnext.simulator.responses import draw_requests, draw_responses
from watchnext.simulator.world import World

import numpy as np

log = logging.getLogger(__name__)

# Per-user sums kept for every arm: what each metric divides.
_COMPONENTS = ("requests", "impressions", "clicks", "watch_seconds", "likes", "dismissals", "surveys",
               "rating_sum", "expected_clicks", "expected_watch_seconds", "expected_likes",
               "expected_dismissals")
# metric → (numerator, denominator, what it is). Drawn outcomes first (what an online test
# sees), then their expectations under the world's truth for the shown order (no outcome
# noise: the same policy comparison with less variance, only a simulator can report it).
METRICS: dict[str, tuple[str, str, str]] = {
    "clicks_per_request": ("clicks", "requests", "engagement: clicks per request"),
    "watch_time_per_request": ("watch_seconds", "requests", "engagement: seconds watched per request"),
    "likes_per_request": ("likes", "requests", "satisfaction: likes per request"),
    "rating_mean": ("rating_sum", "surveys", "satisfaction: mean survey rating (1-5)"),
    "dismiss_rate": ("dismissals", "impressions",
                     "satisfaction: dismissals per impression (lower: better)"),
    "true_clicks_per_request": ("expected_clicks", "requests", "E[clicks per request] under the truth"),
    "true_watch_time_per_request": ("expected_watch_seconds", "requests",
                                    "E[seconds watched per request] under the truth"),
    "true_likes_per_request": ("expected_likes", "requests", "E[likes per request] under the truth"),
    "true_dismiss_rate": ("expected_dismissals", "impressions",
                          "E[dismissals per impression] under the truth"),
}
# Metrics where a decrease is the improvement.
LOWER_IS_BETTER = ("dismiss_rate", "true_dismiss_rate")


@dataclass(frozen=True)
class ExperimentParams:
    """How much traffic an experiment sees and how its results are stated."""

    # Simulated days of traffic (each a fresh draw of requests, after the logged days).
    days: int = 1
    # Requests per day over all arms (each arm gets its users' share).
    requests_per_day: int = 3000
    # Seed of the traffic and of the user split (salt "experiment-<seed>"); not the world's.
    seed: int = 0
    # Confidence level of the intervals (normal, two-sided).
    confidence: float = 0.95

    def validate(self) -> None:
        """Raise ValueError naming the first bad parameter."""
        for name, ok, msg in (("days", self.days >= 1, "must be >= 1"),
                              ("requests_per_day", self.requests_per_day >= 1, "must be >= 1"),
                              ("confidence", 0.0 < self.confidence < 1.0, "must be in (0, 1)")):
            if not ok:
                raise ValueError(f"experiment parameter {name}={getattr(self, name)!r}: {msg}")


def _response_sums(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-request sums of each component from the responses to (n, k) slates."""
    n, k = out["click"].shape
    p_clicked = out["examination"] * out["p_click"]
    return {
        "requests": np.ones(n), "impressions": np.full(n, float(k)),
        "clicks": out["click"].sum(axis=1), "watch_seconds": out["watch"].sum(axis=1),
        "likes": out["like"].sum(axis=1), "dismissals": out["dismiss"].sum(axis=1),
        "surveys": out["survey"].sum(axis=1), "rating_sum": out["rating"].sum(axis=1),
        "expected_clicks": p_clicked.sum(axis=1),
        "expected_watch_seconds": out["expected_watch_time"].sum(axis=1),
        "expected_likes": (p_clicked * out["p_like"]).sum(axis=1),
        "expected_dismissals": (out["examination"] * out["p_dismiss"]).sum(axis=1),
    }


def run_experiment(arms: Mapping[str, RankingPolicy], world_params: SimulatorParams,
                   params: ExperimentParams | None = None, control: str | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the arms side by side on the same simulated traffic, split by user; return the report.

    `arms` maps arm names to ranking policies (equal shares of users); `control` (default:
    the first arm) is what every other arm's differences are measured against. The report
    (JSON-ready) has per arm its users, requests and metrics (value, se) and per other arm
    each metric's difference from the control with confidence intervals.
    """
    params = params or ExperimentParams()
    params.validate()
    names = list(arms)
    if len(names) < 2:
        raise ValueError(f"an experiment needs at least two arms, got {names}")
    control = control or names[0]
    if control not in arms:
        raise ValueError(f"control arm {control!r} is not one of the arms {names}")
    say = progress or log.info
    world = World(world_params)
    arm_of_user = assign_arms(world.user_ids.tolist(), [1.0] * len(names), f"experiment-{params.seed}")
    sums = np.zeros((len(names), world_params.num_users, len(_COMPONENTS)))
    t0 = time.time()
    for d in range(params.days):
        day = world_params.days + d
        requests = draw_requests(world, day, params.requests_per_day,
                                 np.random.default_rng(np.random.SeedSequence([params.seed, 2, d])))
        arm = arm_of_user[requests.user]
        for i, name in enumerate(names):
            rows = np.flatnonzero(arm == i)
            if not rows.size:
                continue
            sub = requests.subset(rows)
            rng = np.random.default_rng(np.random.SeedSequence([params.seed, 3, d, i]))
            # No exploration traffic: an arm shows its own policy's order on every request.
            shown, _ = choose_slates(sub, arms[name], world_params.slate_size, 0.0, rng)
            per_request = _response_sums(draw_responses(sub, shown, rng))
            for c, component in enumerate(_COMPONENTS):
                np.add.at(sums[i, :, c], sub.user, per_request[component])
        elapsed = time.time() - t0
        eta = elapsed / (d + 1) * (params.days - d - 1)
        say(f"experiment day {d + 1}/{params.days}: {(d + 1) * params.requests_per_day} requests "
            f"in {elapsed:.0f}s, ETA {eta:.0f}s")
    return _report(names, control, sums, world_params, params, time.time() - t0)


def _report(names: list[str], control: str, sums: np.ndarray, world_params: SimulatorParams,
            params: ExperimentParams, seconds: float) -> dict[str, Any]:
    col = {c: j for j, c in enumerate(_COMPONENTS)}
    arms: dict[str, Any] = {}
    estimates: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        active = sums[i, :, col["requests"]] > 0
        user_sums = sums[i, active]
        estimates[name] = {m: ratio_estimate(user_sums[:, col[num]], user_sums[:, col[den]])
                           for m, (num, den, _) in METRICS.items()}
        arms[name] = {"users": int(active.sum()), "requests": int(user_sums[:, col["requests"]].sum()),
                      "metrics": {m: {"value": e.value, "se": e.se} for m, e in estimates[name].items()}}
    differences = {
        name: {m: difference(estimates[name][m], estimates[control][m], params.confidence).to_dict()
               for m in METRICS}
        for name in names if name != control}
    return {"params": asdict(params), "world": asdict(world_params), "control": control, "arms": arms,
            "differences": differences, "metrics": {m: what for m, (_, _, what) in METRICS.items()},
            "lower_is_better": list(LOWER_IS_BETTER), "seconds": round(seconds, 1)}


def wins(report: dict[str, Any], arm: str, metric: str) -> bool | None:
    """True if `arm` is significantly better than the control on `metric`, False if
    significantly worse, None if the interval includes no change."""
    d = report["differences"][arm][metric]
    if not d["significant"] or math.isnan(d["delta"]):
        return None
    better = d["delta"] > 0
    return (not better) if metric in LOWER_IS_BETTER else better
