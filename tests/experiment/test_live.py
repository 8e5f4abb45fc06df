"""A live experiment in the simulator: the oracle beats a random order by a wide,
significant margin on engagement and satisfaction, an A/A test finds nothing, and a
rerun with the same seed gives the same report."""

from __future__ import annotations

from watchnext.experiment.live import ExperimentParams, run_experiment, wins
from watchnext.simulator.params import SimulatorParams
from watchnext.simulator.policy import OraclePolicy, RandomPolicy
from watchnext.simulator.simulate import logging_policy

import pytest

WORLD = SimulatorParams(num_users=1500, num_videos=600, seed=3)
PARAMS = ExperimentParams(days=2, requests_per_day=1500, seed=1)


@pytest.fixture(scope="module")
def oracle_vs_random():
    arms = {"random": RandomPolicy(), "oracle": OraclePolicy(), "logging": logging_policy(WORLD)}
    return run_experiment(arms, WORLD, PARAMS, progress=lambda _: None)


def test_the_oracle_beats_a_random_order_widely_and_significantly(oracle_vs_random):
    report = oracle_vs_random
    assert report["control"] == "random"
    for metric in ("clicks_per_request", "watch_time_per_request", "likes_per_request", "dismiss_rate",
                   "true_clicks_per_request", "true_likes_per_request", "true_dismiss_rate"):
        assert wins(report, "oracle", metric) is True, metric
    d = report["differences"]["oracle"]
    assert d["clicks_per_request"]["relative_ci_low"] > 0.5
    assert d["true_clicks_per_request"]["relative_ci_low"] > 0.5
    # The logging policy (relevance + noise) sits between the two.
    arms = report["arms"]
    for metric in ("true_clicks_per_request", "true_likes_per_request"):
        values = [arms[a]["metrics"][metric]["value"] for a in ("random", "logging", "oracle")]
        assert values == sorted(values), metric


def test_traffic_is_split_by_user_about_evenly(oracle_vs_random):
    arms = oracle_vs_random["arms"]
    requests = [a["requests"] for a in arms.values()]
    assert sum(requests) == PARAMS.days * PARAMS.requests_per_day
    assert min(requests) > 0.25 * sum(requests)
    users = [a["users"] for a in arms.values()]
    assert sum(users) <= WORLD.num_users


def test_an_a_a_experiment_finds_no_difference_and_reruns_are_identical():
    arms = {"a": OraclePolicy(), "b": OraclePolicy()}
    params = ExperimentParams(days=1, requests_per_day=1500, seed=2)
    first = run_experiment(arms, WORLD, params, progress=lambda _: None)
    again = run_experiment(arms, WORLD, params, progress=lambda _: None)
    first.pop("seconds"), again.pop("seconds")
    assert first == again
    significant = [m for m, d in first["differences"]["b"].items() if d["significant"]]
    # Nine metrics at 95 %: one false alarm can happen; more would mean broken intervals.
    assert len(significant) <= 1, significant


def test_bad_arms_and_parameters_are_refused():
    with pytest.raises(ValueError, match="two arms"):
        run_experiment({"a": OraclePolicy()}, WORLD, PARAMS)
    with pytest.raises(ValueError, match="control arm 'c'"):
        run_experiment({"a": OraclePolicy(), "b": RandomPolicy()}, WORLD, PARAMS, control="c")
    with pytest.raises(ValueError, match="requests_per_day"):
        ExperimentParams(requests_per_day=0).validate()
