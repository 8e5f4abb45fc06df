"""A watch-next log simulator with known ground truth.

Why a simulator: the pipeline must run end to end without anyone's private logs, and
its parts (position debiasing, the multitask trade-offs) can only be checked against
a world whose true click, like and dismiss propensities and examination curve are
known. The simulator writes logs in exactly the format users provide (see
components/log_example_gen/schema.py) plus a `truth` log the pipeline never reads.

The world (fixed for a seed, the same on every simulated day):
- users and videos with latent factors z (dimension `latent_dim`); videos also have
  a Zipf popularity, a quality, a duration and an upload age; users a main device, a
  country, an activity level and a watch history drawn from their tastes;
- per (user, candidate, query, device) a standardized feature vector φ of what the
  model can see or learn (user·candidate and query·candidate affinity through ids,
  history·candidate affinity through watch_history, quality through the id and
  video_log_views, duration, age, activity, a per-user bias through user_id).
  Engagement is g(w_eng·φ) and satisfaction g(w_sat·φ), with g(s) = s + a·Σ sin(α_i s + β_i)
  and w_sat = c·w_eng + sqrt(1-c²)·w_orth (|w_eng| = |w_orth| = 1, w_orth ⟂ w_eng), so
  `task_correlation` c is the cosine of the two tasks' weights as in the synthetic
  data of Ma et al., KDD'18 (MMoE); device and re-watching shift both.

Each request: a user on a device watching a query video gets a slate of `slate_size`
candidates out of a pool (half popular videos, half neighbours of the query) chosen
and ordered by a logging policy that ranks by relevance plus Gaussian noise (and, with
`policy_popularity` > 0, plus the video's standardized log popularity); a
`shuffle_fraction` of requests instead shows a uniformly random subset in random
order, which makes position effects identifiable. Outcomes:
- examined ~ Bernoulli(e), e = 1/(1+position)^eta_device;
- click ~ examined · Bernoulli(p_click), p_click = σ(a + b·engagement);
- seconds watched | click = duration · f, f ~ Beta with mean σ(·engagement);
- like ~ click · Bernoulli(p_like), p_like = σ(·satisfaction);
- dismiss ~ examined · Bernoulli(p_dismiss), p_dismiss = σ(-·satisfaction) (no click needed);
- survey on `survey_rate` of the clicked (watched) impressions, rating 1–5 rising with
  satisfaction.

Output is deterministic for a seed: same parameters → byte-identical files (gzip
with mtime 0, records in request order).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gzip
import json
import logging
import math
import os
import re
import time
import typing
from dataclasses import dataclass
from typing import Any, Literal

from watchnext.core import log_schema as schema

import numpy as np

log = logging.getLogger(__name__)

# How engagement and satisfaction map to probabilities (intercept, slope). The intercepts
# are calibrated for the shown slates (whose engagement is high, as the policy picks it):
# with the defaults CTR ≈ 0.12, like | click ≈ 0.35, dismiss ≈ 4 % of impressions, and
# the AUC of the true p_click for the click label ≈ 0.84.
_CLICK = (-5.0, 1.8)
_LIKE = (-5.5, 1.5)
_DISMISS = (0.0, -1.5)
_COMPLETION = (-2.4, 0.8)
_COMPLETION_CONCENTRATION = 5.0
# Weights of the features in φ for engagement (normalized to a unit vector):
# user·candidate, query·candidate, history·candidate, quality, log duration,
# log1p age, log1p activity, user bias.
_ENGAGEMENT_WEIGHTS = (1.0, 0.8, 0.6, 0.7, -0.3, -0.3, 0.3, 0.5)
# Per-device shifts of engagement and satisfaction (same order as SimulatorParams.devices).
_DEVICE_ENGAGEMENT = {"mobile": 0.0, "desktop": 0.2, "tablet": 0.1, "tv": 0.4}
_DEVICE_SATISFACTION = {"mobile": 0.0, "desktop": 0.1, "tablet": 0.0, "tv": 0.2}
# Re-watching a video in the history is less engaging and less satisfying.
_REWATCH_ENGAGEMENT, _REWATCH_SATISFACTION = -1.0, -0.5
_NONLINEAR_AMPLITUDE = 0.3
_POPULARITY_EXPONENT = 0.8
_NEIGHBOURS = 50
_CHUNK_REQUESTS = 20000


@dataclass(frozen=True)
class SimulatorParams:
    """Everything that defines a simulated world and how much of it to log."""

    days: int = 1
    # Exactly this many per day: ceil(n / slate_size) requests, the last one cut short if needed.
    impressions_per_day: int = 20000
    seed: int = 7
    # First span, YYYYMMDD (UTC day); later days follow.
    start_date: str = "20260101"
    num_users: int = 2000
    num_videos: int = 1000
    latent_dim: int = 8
    slate_size: int = 10
    # Candidates the logging policy scores per request (it shows the best slate_size).
    pool_size: int = 40
    shuffle_fraction: float = 0.1
    # Cosine between the engagement and satisfaction weight vectors (Ma et al., KDD'18).
    task_correlation: float = 0.8
    # Fraction of watched (clicked) impressions that get a 1-5 survey rating.
    survey_rate: float = 0.05
    # Standard deviation of the logging policy's noise on relevance.
    policy_noise: float = 1.0
    # Weight of a video's standardized log popularity in the logging policy's score. A
    # production policy is an earlier model trained on its own clicks, so it promotes what
    # was popular beyond its relevance; popularity (visible to the model as
    # video_log_views) is then confounded with position, which is the selection bias the
    # shallow tower exists to remove. 0: the policy ranks by relevance (plus noise) alone.
    policy_popularity: float = 0.0
    devices: tuple[str, ...] = ("mobile", "desktop", "tablet", "tv")
    device_shares: tuple[float, ...] = (0.55, 0.3, 0.1, 0.05)
    # Examination e = 1/(1+position)^eta, per device.
    device_eta: tuple[float, ...] = (1.0, 0.6, 0.8, 1.4)
    countries: tuple[str, ...] = ("US", "IN", "BR", "GB", "DE", "JP", "MX", "FR", "ID", "NG")
    # Files per log per span.
    shards: int = 4
    log_format: Literal["jsonl", "parquet"] = "jsonl"

    def validate(self) -> None:
        """Raise ValueError naming the first bad parameter."""
        def check(ok: bool, name: str, msg: str) -> None:
            if not ok:
                raise ValueError(f"simulator parameter {name}={getattr(self, name)!r}: {msg}")

        check(self.days >= 1, "days", "must be >= 1")
        check(self.impressions_per_day >= 1, "impressions_per_day", "must be >= 1")
        check(re.fullmatch(r"\d{8}", self.start_date) is not None
              and _parse_date(self.start_date) is not None, "start_date", "must be a date YYYYMMDD")
        check(self.num_users >= 1, "num_users", "must be >= 1")
        check(self.num_videos >= self.pool_size + 1, "num_videos", "must exceed pool_size")
        check(self.latent_dim >= 1, "latent_dim", "must be >= 1")
        check(1 <= self.slate_size <= schema.MAX_POSITION, "slate_size",
              f"must be in [1, {schema.MAX_POSITION}]")
        check(self.pool_size >= 2 * self.slate_size, "pool_size", "must be >= 2 * slate_size")
        check(0.0 <= self.shuffle_fraction <= 1.0, "shuffle_fraction", "must be in [0, 1]")
        check(-1.0 <= self.task_correlation <= 1.0, "task_correlation", "must be in [-1, 1]")
        check(0.0 <= self.survey_rate <= 1.0, "survey_rate", "must be in [0, 1]")
        check(self.policy_noise >= 0.0, "policy_noise", "must be >= 0")
        check(math.isfinite(self.policy_popularity), "policy_popularity", "must be a finite number")
        check(set(self.devices) <= set(schema.DEVICES) and len(set(self.devices)) == len(self.devices),
              "devices", f"must be distinct values of {schema.DEVICES}")
        check(len(self.device_shares) == len(self.devices) and min(self.device_shares) >= 0
              and sum(self.device_shares) > 0, "device_shares", "one non-negative share per device")
        check(len(self.device_eta) == len(self.devices) and min(self.device_eta) >= 0,
              "device_eta", "one non-negative eta per device")
        check(len(self.countries) >= 1, "countries", "at least one country")
        check(self.shards >= 1, "shards", "must be >= 1")
        check(self.log_format in ("jsonl", "parquet"), "log_format", "must be jsonl or parquet")

    def examination(self, position: np.ndarray, device_index: np.ndarray) -> np.ndarray:
        """e(position, device) = 1 / (1 + position) ** eta_device."""
        eta = np.asarray(self.device_eta, dtype=np.float64)[device_index]
        return 1.0 / np.power(1.0 + position, eta)


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def task_weights(correlation: float, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(w_eng, w_sat): unit vectors whose cosine is `correlation`.

    w_sat = c·w_eng + sqrt(1 - c²)·w_orth with w_orth a random unit vector orthogonal
    to w_eng (Gram-Schmidt), as in Ma et al.'s synthetic data.
    """
    w_eng = np.asarray(_ENGAGEMENT_WEIGHTS[:dim], dtype=np.float64)
    w_eng = w_eng / np.linalg.norm(w_eng)
    w_orth = rng.normal(size=dim)
    w_orth -= w_orth.dot(w_eng) * w_eng
    w_orth /= np.linalg.norm(w_orth)
    w_sat = correlation * w_eng + np.sqrt(max(0.0, 1.0 - correlation**2)) * w_orth
    return w_eng, w_sat


class World:
    """The users, videos and task weights of one simulated world (fixed for a seed)."""

    def __init__(self, p: SimulatorParams):
        self.p = p
        rng = np.random.default_rng(np.random.SeedSequence([p.seed, 0]))
        nu, nv, dim = p.num_users, p.num_videos, p.latent_dim
        self.user_ids = np.array([f"u{i:0{len(str(nu - 1))}d}" for i in range(nu)], dtype=object)
        self.video_ids = np.array([f"v{i:0{len(str(nv - 1))}d}" for i in range(nv)], dtype=object)
        self.z_user = rng.normal(scale=dim**-0.5, size=(nu, dim)) * 1.5
        self.z_video = rng.normal(scale=dim**-0.5, size=(nv, dim)) * 1.5
        self.user_bias = rng.normal(size=nu)
        shares = np.asarray(p.device_shares, dtype=np.float64)
        self.device_share = shares / shares.sum()
        self.user_device = rng.choice(len(p.devices), size=nu, p=self.device_share)
        country_p = 1.0 / np.arange(1, len(p.countries) + 1)
        self.user_country = rng.choice(len(p.countries), size=nu, p=country_p / country_p.sum())
        self.user_activity = np.round(rng.lognormal(np.log(8.0), 1.0, size=nu), 1)
        # Popularity: Zipf over a random order of the videos.
        ranks = rng.permutation(nv)
        pop = (ranks + 1.0) ** -_POPULARITY_EXPONENT
        self.popularity = pop / pop.sum()
        log_pop = np.log(self.popularity)
        self.popularity_z = (log_pop - log_pop.mean()) / log_pop.std()
        self.quality = rng.normal(size=nv)
        self.duration = np.round(np.clip(rng.lognormal(5.3, 0.8, size=nv), 15.0, 4 * 3600.0), 1)
        self.age0 = rng.exponential(300.0, size=nv)
        self.log_views_base = (8.0 + np.log(self.popularity * nv) + 0.6 * self.quality
                               + 0.3 * rng.normal(size=nv))
        self.history, self.history_len = self._histories(rng)
        self.history_ids = [self.video_ids[h[:n]].tolist()
                            for h, n in zip(self.history, self.history_len, strict=True)]
        in_history = np.arange(schema.MAX_HISTORY) < self.history_len[:, None]
        hist_z = self.z_video[self.history] * in_history[..., None]
        self.z_history = hist_z.sum(axis=1) / np.maximum(self.history_len, 1)[:, None]
        self.neighbours = self._neighbours()
        self.w_eng, self.w_sat = task_weights(p.task_correlation, 8, rng)
        self.alpha = rng.normal(size=2)
        self.beta = rng.normal(size=2)
        self.device_eng = np.array([_DEVICE_ENGAGEMENT[d] for d in p.devices])
        self.device_sat = np.array([_DEVICE_SATISFACTION[d] for d in p.devices])
        self._standardize(rng)

    def _histories(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Each user's last MAX_HISTORY watches: Gumbel top-k on taste + popularity (no repeats)."""
        nu, nv = self.p.num_users, self.p.num_videos
        k = min(schema.MAX_HISTORY, nv)
        history = np.zeros((nu, schema.MAX_HISTORY), dtype=np.int64)
        chunk = max(1, 4_000_000 // nv)
        log_pop = np.log(self.popularity)
        for start in range(0, nu, chunk):
            zu = self.z_user[start:start + chunk]
            keys = 2.0 * zu @ self.z_video.T + log_pop + rng.gumbel(size=(len(zu), nv))
            top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
            history[start:start + chunk, :k] = np.take_along_axis(top, order, axis=1)
        length = np.minimum(np.floor(self.user_activity), k).astype(np.int64)
        return history, length

    def _neighbours(self) -> np.ndarray:
        """The _NEIGHBOURS most related videos of each video (by latent dot product)."""
        nv = self.p.num_videos
        k = min(_NEIGHBOURS, nv - 1)
        out = np.zeros((nv, k), dtype=np.int64)
        chunk = max(1, 4_000_000 // nv)
        for start in range(0, nv, chunk):
            sims = self.z_video[start:start + chunk] @ self.z_video.T
            rows = np.arange(len(sims))
            sims[rows, start + rows] = -np.inf
            out[start:start + chunk] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return np.sort(out, axis=1)

    def features(self, user: np.ndarray, query: np.ndarray, cand: np.ndarray, day: int,
                 activity: np.ndarray) -> np.ndarray:
        """φ: the raw (unstandardized) feature vector for (user, query, candidate) arrays."""
        zc = self.z_video[cand]
        return np.stack(np.broadcast_arrays(
            np.einsum("...d,...d->...", self.z_user[user], zc),
            np.einsum("...d,...d->...", self.z_video[query], zc),
            np.einsum("...d,...d->...", self.z_history[user], zc),
            self.quality[cand],
            np.log(self.duration[cand]),
            np.log1p(self.age0[cand] + day),
            np.log1p(activity),
            self.user_bias[user],
        ), axis=-1)

    def _standardize(self, rng: np.random.Generator) -> None:
        """Fix φ's means and scales from a probe sample, so weights act on unit-variance inputs."""
        n = 50000
        user = rng.integers(self.p.num_users, size=n)
        query = self.history[user, 0]
        cand = rng.choice(self.p.num_videos, size=n, p=self.popularity)
        phi = self.features(user, query, cand, 0, self.user_activity[user])
        self.phi_mean = phi.mean(axis=0)
        self.phi_std = phi.std(axis=0) + 1e-9

    def propensities(self, phi: np.ndarray, device: np.ndarray, rewatch: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(engagement, satisfaction) logits from φ, device and re-watch flags."""
        x = (phi - self.phi_mean) / self.phi_std

        def g(s: np.ndarray) -> np.ndarray:
            wiggle = sum(np.sin(a * s + b) for a, b in zip(self.alpha, self.beta, strict=True))
            return s + _NONLINEAR_AMPLITUDE * wiggle

        eng = g(x @ self.w_eng) + self.device_eng[device] + _REWATCH_ENGAGEMENT * rewatch
        sat = g(x @ self.w_sat) + self.device_sat[device] + _REWATCH_SATISFACTION * rewatch
        return eng, sat


def _day_impressions(world: World, day: int, n_impressions: int, rng: np.random.Generator
                     ) -> dict[str, np.ndarray]:
    """All impressions of one day as columns (request-major, slot order), with truth and outcomes."""
    p = world.p
    k = p.slate_size
    n_req = -(-n_impressions // k)
    cols: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_req, _CHUNK_REQUESTS):
        chunk = _requests(world, day, min(_CHUNK_REQUESTS, n_req - start), rng)
        for name, arr in chunk.items():
            cols.setdefault(name, []).append(arr)
    out = {name: np.concatenate(arrs) for name, arrs in cols.items()}
    # Flatten (request, slot) → impression rows, then keep exactly n_impressions.
    flat: dict[str, np.ndarray] = {}
    for name, arr in out.items():
        flat[name] = (arr.reshape(-1, *arr.shape[2:]) if arr.ndim >= 2 and arr.shape[1] == k
                      else np.repeat(arr, k, axis=0))
    flat["request_index"] = np.repeat(np.arange(n_req), k)
    return {name: arr[:n_impressions] for name, arr in flat.items()}


def _requests(world: World, day: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`n` requests: per-request columns (n,) and per-slot columns (n, slate_size)."""
    p = world.p
    k, pool = p.slate_size, p.pool_size
    weights = world.user_activity + 1.0
    user = rng.choice(p.num_users, size=n, p=weights / weights.sum())
    device = np.where(rng.random(n) < 0.8, world.user_device[user],
                      rng.choice(len(p.devices), size=n, p=world.device_share))
    activity = np.round(world.user_activity[user] * np.exp(0.1 * rng.normal(size=n)), 1)
    hlen = world.history_len[user]
    pick = (rng.random(n) * np.maximum(hlen, 1)).astype(np.int64)
    query = np.where(hlen > 0, world.history[user, pick],
                     rng.choice(p.num_videos, size=n, p=world.popularity))
    # Candidate pool: half popular videos, half neighbours of the query.
    n_pop = pool // 2
    popular = rng.choice(p.num_videos, size=(n, n_pop), p=world.popularity)
    nb = world.neighbours.shape[1]
    related = world.neighbours[query[:, None], rng.integers(nb, size=(n, pool - n_pop))]
    cands = np.sort(np.concatenate([popular, related], axis=1), axis=1)
    invalid = np.zeros_like(cands, dtype=bool)
    invalid[:, 1:] = cands[:, 1:] == cands[:, :-1]
    invalid |= cands == query[:, None]
    phi = world.features(user[:, None], query[:, None], cands, day, activity[:, None])
    rewatch = (world.history[user][:, None, :] == cands[..., None]) & (
        np.arange(schema.MAX_HISTORY) < hlen[:, None])[:, None, :]
    rewatch = rewatch.any(axis=-1).astype(np.float64)
    eng, sat = world.propensities(phi, device[:, None], rewatch)
    relevance = eng + 0.5 * sat
    shuffled = rng.random(n) < p.shuffle_fraction
    score = np.where(shuffled[:, None], rng.random((n, pool)),
                     relevance + p.policy_popularity * world.popularity_z[cands]
                     + p.policy_noise * rng.normal(size=(n, pool)))
    score[invalid] = -np.inf
    # A pool has enough distinct candidates with overwhelming probability; if not, the
    # slate would repeat a candidate, so fail loudly rather than write duplicate keys.
    if (np.isfinite(score).sum(axis=1) < k).any():
        raise RuntimeError("a candidate pool had fewer distinct videos than slate_size; "
                           "raise num_videos or pool_size")
    top = np.argsort(-score, axis=1, kind="stable")[:, :k]

    def take(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, top, axis=1)

    cand, eng, sat, relevance = take(cands), take(eng), take(sat), take(relevance)
    position = np.broadcast_to(np.arange(k), (n, k))
    examination = p.examination(position, device[:, None])
    p_click = _sigmoid(_CLICK[0] + _CLICK[1] * eng)
    p_like = _sigmoid(_LIKE[0] + _LIKE[1] * sat)
    p_dismiss = _sigmoid(_DISMISS[0] + _DISMISS[1] * sat)
    completion = _sigmoid(_COMPLETION[0] + _COMPLETION[1] * eng)
    duration = world.duration[cand]
    examined = rng.random((n, k)) < examination
    click = examined & (rng.random((n, k)) < p_click)
    fraction = rng.beta(_COMPLETION_CONCENTRATION * completion, _COMPLETION_CONCENTRATION * (1 - completion))
    watch = np.where(click, np.maximum(1.0, np.round(duration * fraction, 1)), 0.0)
    like = click & (rng.random((n, k)) < p_like)
    dismiss = examined & (rng.random((n, k)) < p_dismiss)
    survey = click & (rng.random((n, k)) < p.survey_rate)
    rating = np.clip(np.round(1.5 + 3.5 * p_like + 0.7 * rng.normal(size=(n, k))), 1, 5)
    age = world.age0[cand] + day
    return {
        "user": user, "device": device, "query": query, "activity": activity, "shuffled": shuffled,
        "candidate": cand, "position": position.copy(), "video_duration": duration,
        "video_age_days": np.round(age, 2),
        "video_log_views": np.round(np.log1p(np.exp(world.log_views_base[cand] + 0.4 * np.log1p(age))), 4),
        "examination": examination, "p_click": p_click, "p_like": p_like, "p_dismiss": p_dismiss,
        "expected_watch_time": examination * p_click * duration * completion, "relevance": relevance,
        "click": click, "watch": watch, "like": like, "dismiss": dismiss, "survey": survey,
        "rating": np.where(survey, rating, 0.0),
    }


def _events(imp: dict[str, np.ndarray], timestamps: np.ndarray, rng: np.random.Generator
            ) -> dict[str, np.ndarray]:
    """The event log of a day's impressions, in (impression, event type) order."""
    n = len(timestamps)
    click_ts = timestamps + rng.integers(1, 30, size=n)
    watch_end = click_ts + np.ceil(imp["watch"]).astype(np.int64)
    kinds = [
        (schema.CLICK_EVENT, imp["click"], click_ts, None),
        (schema.WATCH_EVENT, imp["click"], watch_end, imp["watch"]),
        (schema.LIKE_EVENT, imp["like"], click_ts + (0.5 * imp["watch"]).astype(np.int64), None),
        (schema.DISMISS_EVENT, imp["dismiss"], timestamps + rng.integers(1, 60, size=n), None),
        (schema.SURVEY_EVENT, imp["survey"], watch_end + 5, imp["rating"]),
    ]
    index, code, ts, value = [], [], [], []
    for c, (_, mask, when, val) in enumerate(kinds):
        rows = np.flatnonzero(mask)
        index.append(rows)
        code.append(np.full(len(rows), c))
        ts.append(when[rows])
        value.append(val[rows] if val is not None else np.full(len(rows), np.nan))
    index_a, code_a = np.concatenate(index), np.concatenate(code)
    order = np.lexsort((code_a, index_a))
    names = np.array([name for name, *_ in kinds], dtype=object)
    return {"impression": index_a[order], "event": names[code_a[order]],
            "timestamp": np.concatenate(ts)[order], "value": np.concatenate(value)[order]}


def _json_tokens(col: Any) -> list[Any]:
    """A column as JSON tokens for %-formatting: numbers stay numbers (Python prints ints and
    shortest-repr floats as JSON does), NaN becomes null, strings and lists are JSON-encoded
    once per distinct value (ids and per-user histories repeat a lot)."""
    if isinstance(col, np.ndarray) and col.dtype.kind in "iub":
        return col.astype(np.int64).tolist()
    if isinstance(col, np.ndarray) and col.dtype.kind == "f":
        values = col.tolist()
        if np.isnan(col).any():
            return ["null" if v != v else v for v in values]
        return values
    cache: dict[Any, str] = {}
    out = []
    for v in col.tolist() if isinstance(col, np.ndarray) else col:
        key = id(v) if isinstance(v, list) else v
        token = cache.get(key)
        if token is None:
            token = cache[key] = json.dumps(v, separators=(",", ":"))
        out.append(token)
    return out


def _write(path: str, columns: dict[str, Any], start: int, stop: int, log_format: str) -> None:
    """Write rows [start, stop) of `columns` deterministically: gzip'd JSON Lines with mtime 0
    (NaN floats become null), or Parquet (NaN floats become null)."""
    if log_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({name: pa.array(col[start:stop], from_pandas=True) for name, col in columns.items()})
        pq.write_table(table, path)
        return
    # Formatting a template per row is several times faster than json.dumps of a dict per row.
    template = "{" + ",".join(f"{json.dumps(name)}:%s" for name in columns) + "}"
    tokens = [col[start:stop] for col in columns.values()]
    text = "".join(template % row + "\n" for row in zip(*tokens, strict=True))
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                compresslevel=3) as f:
        f.write(text.encode("utf-8"))


def _shard_paths(out_dir: str, log_name: str, span: str, shards: int, log_format: str) -> list[str]:
    folder = os.path.join(out_dir, log_name, f"span={span}")
    os.makedirs(folder, exist_ok=True)
    # Remove shards of an earlier run (maybe with more shards); never other files.
    for name in os.listdir(folder):
        if re.fullmatch(r"part-\d{5}-of-\d{5}\.(jsonl\.gz|parquet)", name):
            os.remove(os.path.join(folder, name))
    ext = "parquet" if log_format == "parquet" else "jsonl.gz"
    return [os.path.join(folder, f"part-{s:05d}-of-{shards:05d}.{ext}") for s in range(shards)]


def _write_day(world: World, span: str, day: int, out_dir: str, rng: np.random.Generator) -> dict[str, Any]:
    """Simulate and write one span; return its counts."""
    p = world.p
    imp = _day_impressions(world, day, p.impressions_per_day, rng)
    n = len(imp["candidate"])
    n_req = int(imp["request_index"][-1]) + 1
    day_start = int(dt.datetime.strptime(span, "%Y%m%d").replace(tzinfo=dt.timezone.utc).timestamp())
    req_ts = day_start + np.sort(rng.integers(0, 86400 - 3600, size=n_req))
    timestamps = req_ts[imp["request_index"]]
    events = _events(imp, timestamps, rng)

    width = len(str(n_req - 1))
    request_ids = np.array([f"{span}-{i:0{width}d}" for i in range(n_req)], dtype=object)
    rid = request_ids[imp["request_index"]]
    cand = world.video_ids[imp["candidate"]]
    user = imp["user"]
    impressions = {
        "request_id": rid,
        "timestamp": timestamps,
        "user_id": world.user_ids[user],
        "query_video_id": world.video_ids[imp["query"]],
        "candidate_video_id": cand,
        "position": imp["position"],
        "device": np.asarray(p.devices, dtype=object)[imp["device"]],
        "country": np.asarray(p.countries, dtype=object)[world.user_country[user]],
        "video_duration": imp["video_duration"],
        "video_age_days": imp["video_age_days"],
        "video_log_views": imp["video_log_views"],
        "user_activity": imp["activity"],
        # One list per user, shared by all of that user's rows (not copied per impression).
        "watch_history": [world.history_ids[u] for u in user.tolist()],
    }
    truth = {"request_id": rid, "candidate_video_id": cand, "position": imp["position"],
             "device": impressions["device"]}
    truth.update({f.name: np.round(imp[f.name], 6) for f in schema.TRUTH_FIELDS
                  if f.name not in truth and f.name != "shuffled"})
    truth["shuffled"] = imp["shuffled"].astype(np.int64)
    ev = events["impression"]
    event_columns = {"request_id": rid[ev], "candidate_video_id": cand[ev], "event": events["event"],
                     "timestamp": events["timestamp"], "value": np.round(events["value"], 1)}
    # Shards hold whole requests, so a request's impressions, events and truth share a shard index.
    shard_of_request = (np.arange(n_req) * p.shards) // n_req
    imp_shard = shard_of_request[imp["request_index"]]
    files = []
    for log_name, columns, shard in (
        (schema.IMPRESSIONS_LOG, impressions, imp_shard),
        (schema.EVENTS_LOG, event_columns, imp_shard[ev]),
        (schema.TRUTH_LOG, truth, imp_shard),
    ):
        bounds = np.searchsorted(shard, np.arange(p.shards + 1))
        if p.log_format == "jsonl":
            columns = {name: _json_tokens(col) for name, col in columns.items()}
        for s, path in enumerate(_shard_paths(out_dir, log_name, span, p.shards, p.log_format)):
            _write(path, columns, int(bounds[s]), int(bounds[s + 1]), p.log_format)
            files.append(path)
    counts = {schema.EVENTS_LOG + "." + k: int((events["event"] == k).sum()) for k in schema.EVENT_TYPES}
    return {"span": span, "requests": n_req, "impressions": n, "events": len(ev),
            **counts, "shuffled_requests": int(np.unique(imp["request_index"][imp["shuffled"]]).size),
            "ctr": float(imp["click"].mean()), "files": files}


def simulate(out_dir: str, params: SimulatorParams | None = None, **overrides: Any) -> dict[str, Any]:
    """Simulate `days` daily spans of logs into `out_dir`; return a summary of counts.

    `simulate(dir, days=2, seed=3)` and `simulate(dir, SimulatorParams(...))` both work;
    keyword overrides apply on top of `params`. The summary has one entry per span
    (requests, impressions, events by type, CTR, files) and totals.
    """
    p = dataclasses.replace(params or SimulatorParams(), **overrides)
    p.validate()
    t0 = time.time()
    world = World(p)
    start = _parse_date(p.start_date)
    assert start is not None
    spans = []
    for day in range(p.days):
        span = (start + dt.timedelta(days=day)).strftime("%Y%m%d")
        rng = np.random.default_rng(np.random.SeedSequence([p.seed, 1, day]))
        counts = _write_day(world, span, day, out_dir, rng)
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
