"""Requests and the users' responses to a shown slate, drawn from the world's ground truth.

Each request: a user on a device watching a query video, with a pool of `pool_size`
candidates (half popular videos, half neighbours of the query). A ranking policy
(simulator/policy.py) picks and orders the shown slate; the outcomes of the shown order:
- examined ~ Bernoulli(e), e = 1/(1+position)^eta_device;
- click ~ examined · Bernoulli(p_click), p_click = σ(a + b·engagement);
- seconds watched | click = duration · f, f ~ Beta with mean σ(·engagement);
- like ~ click · Bernoulli(p_like), p_like = σ(·satisfaction);
- dismiss ~ examined · Bernoulli(p_dismiss), p_dismiss = σ(-·satisfaction) (no click needed);
- survey on `survey_rate` of the clicked (watched) impressions, rating 1–5 rising with
  satisfaction.
The logged day and a live experiment's arms both draw their outcomes with
`draw_responses`, so the two can never disagree about how users behave.
"""

from __future__ import annotations

from watchnext.core import log_schema as schema
from watchnext.simulator.policy import Requests
from watchnext.simulator.world import World, sigmoid

import numpy as np

# How engagement and satisfaction map to probabilities (intercept, slope). The intercepts
# are calibrated for the shown slates (whose engagement is high, as the policy picks it):
# with the defaults CTR ≈ 0.12, like | click ≈ 0.35, dismiss ≈ 4 % of impressions, and
# the AUC of the true p_click for the click label ≈ 0.84.
_CLICK = (-5.0, 1.8)
_LIKE = (-5.5, 1.5)
_DISMISS = (0.0, -1.5)
_COMPLETION = (-2.4, 0.8)
_COMPLETION_CONCENTRATION = 5.0


def draw_requests(world: World, day: int, n: int, rng: np.random.Generator) -> Requests:
    """`n` requests of day `day`: who asks, on what, and their candidate pools with truth."""
    p = world.p
    pool = p.pool_size
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
    age = world.age0[cands] + day
    return Requests(
        world=world, day=day, user=user, device=device, activity=activity, query=query,
        candidates=cands, valid=~invalid, video_duration=world.duration[cands],
        video_age_days=np.round(age, 2),
        video_log_views=np.round(np.log1p(np.exp(world.log_views_base[cands] + 0.4 * np.log1p(age))), 4),
        engagement=eng, satisfaction=sat, relevance=eng + 0.5 * sat)


def draw_responses(requests: Requests, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The users' responses to the slates `shown` (pool indices, best first, (n, k)).

    Returns per-slot columns (n, k): the shown candidates' features and truth (examination,
    p_click, p_like, p_dismiss, expected_watch_time, relevance) and the drawn outcomes
    (click, watch seconds, like, dismiss, survey, rating; rating 0 where no survey).
    """
    p = requests.world.p
    n, k = shown.shape

    def take(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, shown, axis=1)

    cand, eng, sat, relevance = (take(requests.candidates), take(requests.engagement),
                                 take(requests.satisfaction), take(requests.relevance))
    position = np.broadcast_to(np.arange(k), (n, k))
    examination = p.examination(position, requests.device[:, None])
    p_click = sigmoid(_CLICK[0] + _CLICK[1] * eng)
    p_like = sigmoid(_LIKE[0] + _LIKE[1] * sat)
    p_dismiss = sigmoid(_DISMISS[0] + _DISMISS[1] * sat)
    completion = sigmoid(_COMPLETION[0] + _COMPLETION[1] * eng)
    duration = take(requests.video_duration)
    examined = rng.random((n, k)) < examination
    click = examined & (rng.random((n, k)) < p_click)
    fraction = rng.beta(_COMPLETION_CONCENTRATION * completion, _COMPLETION_CONCENTRATION * (1 - completion))
    watch = np.where(click, np.maximum(1.0, np.round(duration * fraction, 1)), 0.0)
    like = click & (rng.random((n, k)) < p_like)
    dismiss = examined & (rng.random((n, k)) < p_dismiss)
    survey = click & (rng.random((n, k)) < p.survey_rate)
    rating = np.clip(np.round(1.5 + 3.5 * p_like + 0.7 * rng.normal(size=(n, k))), 1, 5)
    return {
        "candidate": cand, "position": position.copy(), "video_duration": duration,
        "video_age_days": take(requests.video_age_days), "video_log_views": take(requests.video_log_views),
        "examination": examination, "p_click": p_click, "p_like": p_like, "p_dismiss": p_dismiss,
        "expected_watch_time": examination * p_click * duration * completion, "relevance": relevance,
        "click": click, "watch": watch, "like": like, "dismiss": dismiss, "survey": survey,
        "rating": np.where(survey, rating, 0.0),
    }
