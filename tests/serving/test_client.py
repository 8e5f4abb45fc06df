"""`watchnext rank` backends: in-process, and gRPC / REST against TF Serving stand-ins.

The gRPC and REST servers here are stand-ins for TF Serving (see tf_serving_stand_in.py):
real servers on 127.0.0.1 speaking its Predict API, backed by the pushed SavedModel.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import os

import watchnext
from watchnext.core.config import Config
from watchnext.serving.client import (
    GRPC_DEFAULT_MAX_MESSAGE_BYTES,
    GrpcBackend,
    InProcessBackend,
    RankRequestError,
    RestBackend,
    chunk_by_size,
    rank,
    request_to_examples,
)

import grpc
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


class _Recording:
    """A backend that keeps the examples it scored and its answer (to reuse them in a test)."""

    def __init__(self, backend):
        self.backend, self.examples, self.outputs = backend, [], {}

    def predict(self, examples):
        self.examples, self.outputs = examples, self.backend.predict(examples)
        return self.outputs


def _many_candidates(rank_request: dict, n: int) -> dict:
    """The logged slate's candidates repeated to n, with varied ages and every other id unseen,
    and a 20-id history, so that the tf.Examples exceed one default-sized gRPC message."""
    slate = rank_request["candidates"]
    candidates = []
    for i in range(n):
        candidate = dict(slate[i % len(slate)])
        candidate["video_age_days"] = float(candidate["video_age_days"]) + i % 97
        if i % 2:
            candidate["candidate_video_id"] = f"unseen-video-{i:06d}"
        candidates.append(candidate)
    history = (rank_request["watch_history"] + [f"history-video-{j:04d}" for j in range(20)])[:20]
    return dict(rank_request, watch_history=history, candidates=candidates)


def test_ten_thousand_candidates_rank_whole_and_in_chunks_over_grpc(pushed_model, in_process, rank_request):
    request = _many_candidates(rank_request, 10_000)
    recording = _Recording(in_process)
    ranked = rank(request, recording)  # one in-process call with all 10,000
    examples, whole = recording.examples, recording.outputs
    scores = [r.score for r in ranked]
    assert len(scores) == 10_000 and all(math.isfinite(s) for s in scores)
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 100
    assert sum(map(len, examples)) > GRPC_DEFAULT_MAX_MESSAGE_BYTES
    assert len(chunk_by_size(examples, GRPC_DEFAULT_MAX_MESSAGE_BYTES)) > 1

    # The stand-in keeps gRPC's default 4 MiB receive limit, as most gRPC servers and
    # proxies do: all 10,000 in one message is refused; the client's calls of at most
    # 4 MiB are not, and score every candidate as the single in-process batch did.
    with stand_in.GrpcStandIn(pushed_model, "watchnext") as server:
        target = f"127.0.0.1:{server.port}"
        one_message = GrpcBackend(target, "watchnext", max_request_bytes=None)
        with pytest.raises(grpc.RpcError) as refused:
            one_message.predict(examples)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        one_message.close()
        backend = GrpcBackend(target, "watchnext")
        chunked = backend.predict(examples)
        backend.close()
    assert set(chunked) == set(whole) == {*HEADS, "score"}
    for key in whole:
        assert chunked[key] == pytest.approx(whole[key], rel=1e-5)


def test_chunks_keep_order_and_stay_under_the_limit():
    examples = [bytes([i % 256]) * (100 + i) for i in range(300)]
    chunks = chunk_by_size(examples, 8192)
    assert [e for chunk in chunks for e in chunk] == examples and len(chunks) > 1
    assert all(sum(map(len, chunk)) <= 8192 for chunk in chunks)
    assert chunk_by_size(examples, None) == [examples] and chunk_by_size([], 8192) == []
    with pytest.raises(RankRequestError, match=r"request\.candidates\[1\]: 5000 bytes"):
        chunk_by_size([b"x", b"y" * 5000], 8192)


def test_the_readmes_sample_request_ranks_through_the_cli(pushed_model, capsys):
    """serving/sample_request.json, as the README runs it: every candidate back, best first."""
    import json

    from watchnext.cli import main

    sample = os.path.join(os.path.dirname(watchnext.__file__), "serving", "sample_request.json")
    with open(sample, encoding="utf-8") as f:
        request = json.load(f)
    assert main(["rank", "--request", sample, "--model", pushed_model]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [a["rank"] for a in answer] == list(range(1, len(request["candidates"]) + 1))
    assert sorted(a["candidate_video_id"] for a in answer) == sorted(
        c["candidate_video_id"] for c in request["candidates"])
    assert [a["score"] for a in answer] == sorted((a["score"] for a in answer), reverse=True)
