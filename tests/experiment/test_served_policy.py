"""The served-model policy sends what the `rank` client sends (its tf.Examples, no position,
the config's score weights) and ranks by the model's score; a bad model output is refused."""

from __future__ import annotations

import watchnext  # noqa: F401
from watchnext.core.config import Config
from watchnext.experiment.served import ServedModelPolicy, rank_request
from watchnext.simulator.params import SimulatorParams
from watchnext.simulator.policy import choose_slates
from watchnext.simulator.responses import draw_requests
from watchnext.simulator.simulate import day_rng
from watchnext.simulator.world import World

import numpy as np
import pytest
import tensorflow as tf

HEADS = Config().head_names
WEIGHTS = [h.score_weight for h in Config().heads]
PARAMS = SimulatorParams(num_users=200, num_videos=150, seed=2)


class FeatureBackend:
    """A stand-in for serving_default: parses each tf.Example and scores it by one feature."""

    def __init__(self, feature: str = "video_log_views") -> None:
        self.feature = feature
        self.seen: list[tf.train.Example] = []
        self.calls = 0

    def predict(self, examples: list[bytes]) -> dict[str, list[float]]:
        self.calls += 1
        parsed = [tf.train.Example.FromString(e) for e in examples]
        self.seen += parsed
        return {"score": [e.features.feature[self.feature].float_list.value[0] for e in parsed],
                "click": [0.1] * len(examples)}


@pytest.fixture(scope="module")
def requests():
    world = World(PARAMS)
    return draw_requests(world, 1, 30, day_rng(PARAMS, 1))


def test_examples_are_the_rank_clients_without_position_and_with_the_score_weights(requests):
    backend = FeatureBackend()
    policy = ServedModelPolicy("fake", HEADS, WEIGHTS, backend=backend, batch_examples=100)
    scores = policy(requests, np.random.default_rng(0))
    assert backend.calls > 1  # batched, whole requests at a time
    assert len(backend.seen) == int(requests.valid.sum())
    for example in backend.seen:
        features = example.features.feature
        assert "position" not in features
        assert list(features["score_weights"].float_list.value) == pytest.approx(WEIGHTS)
        assert {"user_id", "query_video_id", "device", "country", "user_activity", "watch_history",
                "candidate_video_id", "video_duration", "video_age_days", "video_log_views"} <= set(features)
    # Scores land on their own candidates; invalid ones are never sent.
    np.testing.assert_allclose(scores[requests.valid], requests.video_log_views[requests.valid], rtol=1e-6)
    assert np.isneginf(scores[~requests.valid]).all()
    shown, _ = choose_slates(requests, policy, 10, 0.0, np.random.default_rng(0))
    ordered = np.take_along_axis(requests.video_log_views, shown, axis=1)
    assert (np.diff(ordered, axis=1) <= 1e-4).all()


def test_the_request_is_the_simulated_users(requests):
    world = requests.world
    request, cols = rank_request(requests, 3)
    user = int(requests.user[3])
    assert request["user_id"] == world.user_ids[user]
    assert request["watch_history"] == world.history_ids[user]
    assert [c["candidate_video_id"] for c in request["candidates"]] == \
        [world.video_ids[v] for v in requests.candidates[3, cols]]
    assert "score_weights" not in request


def test_a_broken_model_output_is_refused(requests):
    class NaNBackend(FeatureBackend):
        def predict(self, examples):
            return {"score": [float("nan")] * len(examples)}

    class NoScore(FeatureBackend):
        def predict(self, examples):
            return {"click": [0.0] * len(examples)}

    with pytest.raises(RuntimeError, match="not finite"):
        ServedModelPolicy("m", HEADS, WEIGHTS, backend=NaNBackend())(requests, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="no 'score' output"):
        ServedModelPolicy("m", HEADS, WEIGHTS, backend=NoScore())(requests, np.random.default_rng(0))
