"""Ranking policies: what decides the order a simulated user is shown.

A policy sees a batch of requests (`Requests`: each request's context and its pool of
candidates, with the features a served model would get) and returns one score per
(request, candidate); the simulator shows each request's `slate_size` valid candidates of
highest score, best first (`choose_slates`). Scores rather than a permutation keep the
one sort, its tie rule (stable: the earlier candidate first) and the exclusion of invalid
candidates (repeats, the query video itself) in one place for every policy.

The policies here stand on the simulator's ground truth: the logging policy (relevance
plus noise, optionally plus popularity; what `simulate` logs by default), an oracle that
ranks by the true relevance, and a uniformly random one. A policy that ranks with a
served model lives on a higher floor (watchnext.experiment), as the simulator must not
depend on serving or models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from watchnext.simulator.world import World


@dataclass(frozen=True)
class Requests:
    """`n` requests of one day, each with a pool of `pool_size` candidates.

    Per request (n,): user, device and query (indices into the world's users, devices,
    videos) and the user's activity as logged. Per candidate (n, pool): `candidates`
    (video indices), `valid` (False for a repeat within the pool or the query video),
    the candidate features a model sees (video_duration, video_age_days, video_log_views)
    and the ground truth a model never sees (engagement and satisfaction logits,
    relevance = engagement + 0.5·satisfaction, re-watch flags).
    """

    world: World
    day: int
    user: np.ndarray
    device: np.ndarray
    activity: np.ndarray
    query: np.ndarray
    candidates: np.ndarray
    valid: np.ndarray
    video_duration: np.ndarray
    video_age_days: np.ndarray
    video_log_views: np.ndarray
    engagement: np.ndarray
    satisfaction: np.ndarray
    relevance: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, rows: np.ndarray) -> Requests:
        """The requests at `rows` (indices or a boolean mask), in that order."""
        changes = {f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)
                   if isinstance(getattr(self, f.name), np.ndarray)}
        return dataclasses.replace(self, **changes)


class RankingPolicy(Protocol):
    """Scores each request's candidates; higher is shown first.

    Returns an array of shape (len(requests), pool_size); scores of invalid candidates are
    ignored. A policy may draw from `rng` (the simulator's stream for the day), and must
    draw the same amount for the same requests so a day stays deterministic for a seed.
    """

    def __call__(self, requests: Requests, rng: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class LoggingPolicy:
    """The simulated production policy: relevance + popularity·z_pop + noise·N(0, 1).

    `popularity` weights the video's standardized log popularity (a production policy
    trained on its own clicks promotes what was already popular); `noise` is the standard
    deviation of its error on the relevance. See SimulatorParams.policy_noise/_popularity.
    """

    noise: float
    popularity: float

    def __call__(self, requests: Requests, rng: np.random.Generator) -> np.ndarray:
        n, pool = requests.candidates.shape
        popularity_z = requests.world.popularity_z[requests.candidates]
        return (requests.relevance + self.popularity * popularity_z
                + self.noise * rng.normal(size=(n, pool)))


class OraclePolicy:
    """Ranks by the true relevance (engagement + 0.5·satisfaction): the best any model can do."""

    def __call__(self, requests: Requests, rng: np.random.Generator) -> np.ndarray:
        return requests.relevance


class RandomPolicy:
    """A uniformly random order of the valid candidates."""

    def __call__(self, requests: Requests, rng: np.random.Generator) -> np.ndarray:
        return rng.random(requests.candidates.shape)


def choose_slates(requests: Requests, policy: RankingPolicy, slate_size: int, shuffle_fraction: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(shown, shuffled): the pool indices shown per request, best first, (n, slate_size); and
    which requests were exploration traffic (a uniformly random subset in random order,
    which makes position effects identifiable) instead of the policy's order.

    Draws from `rng` in a fixed order: the exploration flags, the random scores, then
    whatever the policy draws.
    """
    n, pool = requests.candidates.shape
    shuffled = rng.random(n) < shuffle_fraction
    random_scores = rng.random((n, pool))
    policy_scores = np.asarray(policy(requests, rng), dtype=np.float64)
    if policy_scores.shape != (n, pool):
        raise ValueError(f"the ranking policy returned scores of shape {policy_scores.shape}, "
                         f"expected (requests, pool_size) = {(n, pool)}")
    score = np.where(shuffled[:, None], random_scores, policy_scores)
    if not np.isfinite(score[requests.valid]).all():
        raise ValueError("the ranking policy returned a score that is not finite for a valid candidate")
    score[~requests.valid] = -np.inf
    # A pool has enough distinct candidates with overwhelming probability; if not, the
    # slate would repeat a candidate, so fail loudly rather than write duplicate keys.
    if (requests.valid.sum(axis=1) < slate_size).any():
        raise RuntimeError("a candidate pool had fewer distinct videos than slate_size; "
                           "raise num_videos or pool_size")
    shown = np.argsort(-score, axis=1, kind="stable")[:, :slate_size]
    return shown, shuffled
