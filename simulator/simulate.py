"""A watch-next log simulator with known ground truth.

Why a simulator: the pipeline must run end to end without anyone's private logs, and
its parts (position debiasing, the multitask trade-offs) can only be checked against
a world whose true click, like and dismiss propensities and examination curve are
known. The simulator writes logs in exactly the format users provide (see
components/log_example_gen/schema.py) plus a `truth` log the pipeline never reads.

The parts, one concept a module:
- params.py: SimulatorParams, what defines a world and how much of it to log;
- world.py: the users, videos and true engagement/satisfaction (fixed for a seed);
- responses.py: requests with their candidate pools, and the users' responses
  (examination, click, watch time, like, dismiss, rating) to a shown order;
- policy.py: the ranking-policy interface and the simulator's own policies (the
  logging policy that ranks by relevance plus Gaussian noise and, with
  `policy_popularity` > 0, popularity; an oracle; a random one). A `shuffle_fraction`
  of requests instead shows a uniformly random subset in random order, which makes
  position effects identifiable;
- logs.py: writing a day's impressions, events and truth.

Output is deterministic for a seed: same parameters and policy → byte-identical files.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import time
import typing
from typing import Any, Literal

from watchnext.simulator.logs import write_day
from watchnext.simulator.params import SimulatorParams, parse_date
from watchnext.simulator.policy import LoggingPolicy, RankingPolicy
from watchnext.simulator.world import World

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["SimulatorParams", "World", "add_arguments", "day_rng", "from_args", "logging_policy",
           "params_from_data_config", "simulate", "span_of_day"]


def logging_policy(p: SimulatorParams) -> LoggingPolicy:
    """The default ranking policy of a world's logs (SimulatorParams.policy_noise/_popularity)."""
    return LoggingPolicy(noise=p.policy_noise, popularity=p.policy_popularity)


def span_of_day(p: SimulatorParams, day: int) -> str:
    """The span (YYYYMMDD) of day `day` (0 = start_date)."""
    start = parse_date(p.start_date)
    if start is None:
        raise ValueError(f"simulator parameter start_date={p.start_date!r}: must be a date YYYYMMDD")
    return (start + dt.timedelta(days=day)).strftime("%Y%m%d")


def day_rng(p: SimulatorParams, day: int) -> np.random.Generator:
    """The random stream of day `day`: independent of the other days, so any day can be
    simulated alone (e.g. by a closed loop, with the policy of that day) and still match."""
    return np.random.default_rng(np.random.SeedSequence([p.seed, 1, day]))


def simulate(out_dir: str, params: SimulatorParams | None = None, policy: RankingPolicy | None = None,
             only_days: typing.Iterable[int] | None = None, **overrides: Any) -> dict[str, Any]:
    """Simulate daily spans of logs into `out_dir`; return a summary of counts.

    `simulate(dir, days=2, seed=3)` and `simulate(dir, SimulatorParams(...))` both work;
    keyword overrides apply on top of `params`. `policy` ranks the slates (default: the
    logging policy of the parameters); `only_days` picks which day indices to write (default:
    all `params.days` of them; a closed loop writes one day at a time, each with the
    model pushed the day before). The summary has one entry per span (requests,
    impressions, events by type, CTR, files) and totals.
    """
    p = dataclasses.replace(params or SimulatorParams(), **overrides)
    p.validate()
    day_indices = list(range(p.days)) if only_days is None else sorted(set(only_days))
    if any(d < 0 for d in day_indices):
        raise ValueError(f"day indices must be >= 0, got {day_indices}")
    policy = policy or logging_policy(p)
    t0 = time.time()
    world = World(p)
    spans = []
    for day in day_indices:
        span = span_of_day(p, day)
        counts = write_day(world, span, day, out_dir, policy, day_rng(p, day))
        log.info("simulated span %s: %d requests, %d impressions, %d events (CTR %.3f) in %s",
                 span, counts["requests"], counts["impressions"], counts["events"], counts["ctr"], out_dir)
        spans.append(counts)
    summary = {
        "out_dir": out_dir,
        "params": dataclasses.asdict(p),
        "spans": spans,
        "impressions": sum(s["impressions"] for s in spans),
        "events": sum(s["events"] for s in spans),
        "seconds": round(time.time() - t0, 2),
    }
    log.info("simulated %d spans, %d impressions, %d events in %.1f s", len(spans), summary["impressions"],
             summary["events"], summary["seconds"])
    return summary


def params_from_data_config(data: Any) -> SimulatorParams:
    """SimulatorParams from the config's `data` section (simulate_days/impressions_per_day/seed)."""
    return SimulatorParams(days=data.simulate_days, impressions_per_day=data.simulate_impressions_per_day,
                           seed=data.simulate_seed)


# ---------------------------------------------------------------------------
# Command-line helpers (the CLI module owns the parser).


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one `--flag` per SimulatorParams field (tuples as comma-separated lists)."""
    hints = typing.get_type_hints(SimulatorParams)
    for f in dataclasses.fields(SimulatorParams):
        hint = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        if typing.get_origin(hint) is tuple:
            parser.add_argument(flag, type=str, default=None,
                                help=f"comma-separated (default {','.join(map(str, f.default))})")
        elif typing.get_origin(hint) is Literal:
            parser.add_argument(flag, choices=typing.get_args(hint), default=None,
                                help=f"default {f.default}")
        else:
            parser.add_argument(flag, type=hint, default=None, help=f"default {f.default}")


def from_args(args: argparse.Namespace, base: SimulatorParams | None = None) -> SimulatorParams:
    """SimulatorParams from parsed flags (flags left unset keep `base`'s values)."""
    hints = typing.get_type_hints(SimulatorParams)
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(SimulatorParams):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        hint = hints[f.name]
        if typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            value = tuple(item(v.strip()) for v in value.split(",") if v.strip())
        changes[f.name] = value
    params = dataclasses.replace(base or SimulatorParams(), **changes)
    params.validate()
    return params

