"""`watchnext rank` backends: in-process, and gRPC / REST against TF Serving stand-ins.

The gRPC and REST servers here are stand-ins for TF Serving (see tf_serving_stand_in.py):
real servers on 127.0.0.1 speaking its Predict API, backed by the pushed SavedModel.
"""

from __future__ import annotations

import copy
import importlib.util
import os

from watchnext.pipeline.configs import Config
from watchnext.serving.client import (
    GrpcBackend,
    InProcessBackend,
    RankRequestError,
    RestBackend,
    rank,
    request_to_examples,
)

import pytest

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location(
    "tf_serving_stand_in", os.path.join(os.path.dirname(__file__), "tf_serving_stand_in.py"))
stand_in = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stand_in)

HEADS = Config().head_names
WEIGHTS = [h.score_weight for h in Config().heads]


def _order(ranked):
    return [r.candidate["candidate_video_id"] for r in ranked]


@pytest.fixture(scope="module")
def in_process(pushed_model):
    return InProcessBackend(pushed_model)


def test_in_process_ranking_is_sorted_by_score_with_every_head(in_process, rank_request):
    ranked = rank(rank_request, in_process)
    assert len(ranked) == len(rank_request["candidates"])
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert set(ranked[0].predictions) == set(HEADS)


def test_grpc_against_tf_serving_stand_in_matches_in_process(pushed_model, in_process, rank_request):
    expected = rank(rank_request, in_process)
    with stand_in.GrpcStandIn(pushed_model, "watchnext") as server:
        backend = GrpcBackend(f"127.0.0.1:{server.port}", "watchnext")
        got = rank(rank_request, backend)
        # Valid JSON, but a required feature is missing: the server answers INVALID_ARGUMENT.
        bad = copy.deepcopy(rank_request)
        del bad["candidates"][0]["video_duration"]
        with pytest.raises(RankRequestError, match=r"TF Serving rejected the request: .*video_duration"):
            rank(bad, backend)
        backend.close()
    assert _order(got) == _order(expected)
    assert [r.score for r in got] == pytest.approx([r.score for r in expected], rel=1e-6)


def test_rest_against_tf_serving_stand_in_matches_in_process(pushed_model, in_process, rank_request):
    expected = rank(rank_request, in_process)
    with stand_in.RestStandIn(pushed_model, "watchnext") as server:
        got = rank(rank_request, RestBackend(server.url, "watchnext"))
    assert _order(got) == _order(expected)
    assert [r.score for r in got] == pytest.approx([r.score for r in expected], rel=1e-6)


def test_request_weights_change_the_score(in_process, rank_request):
    base = rank(rank_request, in_process, HEADS, WEIGHTS)
    only_click = dict(rank_request, score_weights={h: (1.0 if h == "click" else 0.0) for h in HEADS})
    ranked = rank(only_click, in_process, HEADS, WEIGHTS)
    for r in ranked:
        assert r.score == pytest.approx(r.predictions["click"], rel=1e-4)
    assert [r.score for r in ranked] != [r.score for r in base]


def test_unseen_ids_still_score(in_process, rank_request):
    request = copy.deepcopy(rank_request)
    request["user_id"] = "never-seen-user"
    request["candidates"][0]["candidate_video_id"] = "never-seen-video"
    ranked = rank(request, in_process)
    assert len(ranked) == len(request["candidates"])


def test_missing_feature_is_an_invalid_argument_in_process(in_process, rank_request):
    bad = copy.deepcopy(rank_request)
    del bad["user_id"]
    with pytest.raises(RankRequestError, match="user_id"):
        rank(bad, in_process)


def test_empty_candidate_list_ranks_nothing(in_process, rank_request):
    assert rank(dict(rank_request, candidates=[]), in_process) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(user_activity="a lot"), r"request\.user_activity: expected a number"),
        (lambda r: r.update(favourite_colour="red"), r"request\.favourite_colour: unknown feature"),
        (lambda r: r["candidates"][0].update(video_age_days=float("nan")), "not a finite number"),
        (lambda r: r.update(candidates="v1"), "expected a list"),
        (lambda r: r.update(score_weights={"clicks": 1.0}), "unknown heads"),
        (lambda r: r.update(score_weights={"click": "high"}), "not a finite number"),
    ],
)
def test_bad_requests_name_the_field(rank_request, mutate, message):
    request = copy.deepcopy(rank_request)
    mutate(request)
    with pytest.raises(RankRequestError, match=message):
        request_to_examples(request, HEADS, WEIGHTS)
