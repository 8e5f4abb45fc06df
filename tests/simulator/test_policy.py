"""The ranking-policy hook: the default logs do not change, any day can be written alone,
slates never show an invalid candidate, and the users' responses follow the shown order."""

from __future__ import annotations

import glob
import hashlib
import os

from watchnext.simulator.params import SimulatorParams
from watchnext.simulator.policy import OraclePolicy, RandomPolicy, choose_slates
from watchnext.simulator.responses import draw_requests, draw_responses
from watchnext.simulator.simulate import day_rng, logging_policy, simulate
from watchnext.simulator.world import World

import numpy as np
import pytest

_SMALL = SimulatorParams(impressions_per_day=2000, num_users=300, num_videos=200, seed=5, days=2)


def _digests(out_dir: str) -> dict[str, str]:
    return {os.path.relpath(f, out_dir): hashlib.sha256(open(f, "rb").read()).hexdigest()
            for f in sorted(glob.glob(os.path.join(out_dir, "*", "span=*", "*")))}


def test_the_default_policy_is_the_logging_policy_byte_for_byte(tmp_path):
    simulate(str(tmp_path / "a"), _SMALL)
    simulate(str(tmp_path / "b"), _SMALL, policy=logging_policy(_SMALL))
    simulate(str(tmp_path / "c"), _SMALL, policy=OraclePolicy())
    a, b, c = (_digests(str(tmp_path / x)) for x in "abc")
    assert a == b and len(a) == 2 * 3 * _SMALL.shards
    impressions = [k for k in a if k.startswith("impressions")]
    assert all(a[k] != c[k] for k in impressions)


def test_one_day_written_alone_matches_the_same_day_of_a_full_run(tmp_path):
    simulate(str(tmp_path / "all"), _SMALL)
    summary = simulate(str(tmp_path / "one"), _SMALL, only_days=[1])
    assert [s["span"] for s in summary["spans"]] == ["20260102"]
    everything, alone = _digests(str(tmp_path / "all")), _digests(str(tmp_path / "one"))
    assert alone and all(everything[k] == v for k, v in alone.items())
    assert all("span=20260102" in k for k in alone)


def _requests(n: int = 400):
    world = World(_SMALL)
    return world, draw_requests(world, 0, n, day_rng(_SMALL, 0))


def test_slates_show_distinct_valid_candidates_and_never_the_query():
    _, requests = _requests()
    shown, shuffled = choose_slates(requests, RandomPolicy(), 10, 0.0, np.random.default_rng(0))
    assert shown.shape == (len(requests), 10) and not shuffled.any()
    assert np.take_along_axis(requests.valid, shown, axis=1).all()
    videos = np.take_along_axis(requests.candidates, shown, axis=1)
    assert all(len(set(row)) == 10 for row in videos.tolist())
    assert not (videos == requests.query[:, None]).any()


def test_the_oracle_order_is_by_true_relevance_and_exploration_overrides_it():
    _, requests = _requests()
    shown, _ = choose_slates(requests, OraclePolicy(), 10, 0.0, np.random.default_rng(0))
    relevance = np.take_along_axis(requests.relevance, shown, axis=1)
    assert (np.diff(relevance, axis=1) <= 0).all()
    best_valid = np.where(requests.valid, requests.relevance, -np.inf).max(axis=1)
    np.testing.assert_array_equal(relevance[:, 0], best_valid)
    shown, shuffled = choose_slates(requests, OraclePolicy(), 10, 1.0, np.random.default_rng(0))
    assert shuffled.all()
    assert (np.diff(np.take_along_axis(requests.relevance, shown, axis=1), axis=1) > 0).any()


def test_bad_policy_scores_are_refused():
    _, requests = _requests(20)

    def wrong_shape(r, rng):
        return np.zeros((len(r), 3))

    def not_finite(r, rng):
        return np.full(r.candidates.shape, np.nan)

    with pytest.raises(ValueError, match="shape"):
        choose_slates(requests, wrong_shape, 10, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="not finite"):
        choose_slates(requests, not_finite, 10, 0.0, np.random.default_rng(0))


def test_responses_follow_the_shown_order():
    """The same requests shown by the oracle and by a random order: the oracle's slates get
    more clicks, watch time and likes and fewer dismissals; truth columns match the order."""
    _, requests = _requests(3000)
    results = {}
    for name, policy in (("oracle", OraclePolicy()), ("random", RandomPolicy())):
        shown, _ = choose_slates(requests, policy, 10, 0.0, np.random.default_rng(1))
        results[name] = draw_responses(requests, shown, np.random.default_rng(2))
        np.testing.assert_array_equal(results[name]["candidate"],
                                      np.take_along_axis(requests.candidates, shown, axis=1))
    oracle, random = results["oracle"], results["random"]
    assert oracle["click"].mean() > 1.5 * random["click"].mean()
    assert oracle["watch"].mean() > random["watch"].mean()
    assert oracle["like"].mean() > random["like"].mean()
    assert oracle["dismiss"].mean() < random["dismiss"].mean()
    # Outcomes respect their funnel: like and survey need a click, watch time only with one.
    for r in results.values():
        assert not (r["like"] & ~r["click"]).any() and not (r["survey"] & ~r["click"]).any()
        assert ((r["watch"] > 0) == r["click"]).all()
