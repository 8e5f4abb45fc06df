"""Label rules and duplicate handling for one (request_id, candidate_video_id) key."""

from __future__ import annotations

from watchnext.components.log_example_gen import join, validation
from watchnext.core import log_schema as schema


def _imp(tiny, source="i", line=1, **changes):
    record, invalid = validation.validate_impression(tiny.impression("r", "c", **changes))
    assert invalid is None
    return (source, line, record)


def _ev(tiny, kind, value=None, ts=10, line=1):
    record, invalid = validation.validate_event(tiny.event("r", "c", kind, value, ts))
    assert invalid is None
    return ("e", line, record)


def test_labels_from_events(tiny):
    events = [_ev(tiny, "click", line=1), _ev(tiny, "watch", 12.5, line=2), _ev(tiny, "watch", 2.5, line=3),
              _ev(tiny, "survey", 5.0, ts=30, line=4), _ev(tiny, "survey", 3.0, ts=20, line=5)]
    result = join.join_key([_imp(tiny)], events)
    f = result.features
    assert (f["click"], f["watch_time"], f["like"], f["dismiss"], f["rating"], f["rating_present"]) == (
        1, 15.0, 0, 0, 5.0, 1)  # the latest survey (ts 30) wins, whatever the file order
    assert result.rejected == [] and result.counts.count("events.merged") == 5


def test_no_events_gives_all_zero_labels(tiny):
    f = join.join_key([_imp(tiny)], []).features
    assert [f[k] for k in schema.LABELS] == [0, 0.0, 0, 0, 0.0, 0]


def test_orphans_and_events_of_rejected_impressions(tiny):
    orphan = join.join_key([], [_ev(tiny, "click")])
    assert orphan.features is None and orphan.rejected[0]["reason"] == schema.ORPHAN_EVENT
    tombstone = join.join_key([("i", 4, None)], [_ev(tiny, "click")])
    assert tombstone.rejected[0]["reason"] == schema.EVENT_OF_REJECTED_IMPRESSION


def test_duplicates_keep_the_first_copy(tiny):
    result = join.join_key([_imp(tiny, line=9), _imp(tiny, line=2)],
                           [_ev(tiny, "click", line=5), _ev(tiny, "click", line=1)])
    assert result.features["click"] == 1
    reasons = sorted((r["reason"], r["line"]) for r in result.rejected)
    assert reasons == [(schema.DUPLICATE_EVENT, 5), (schema.DUPLICATE_IMPRESSION, 9)]


def test_conflicting_impressions_are_all_rejected(tiny):
    impressions = [_imp(tiny, line=1, position=0), _imp(tiny, line=2, position=1)]
    result = join.join_key(impressions, [_ev(tiny, "like")])
    assert result.features is None
    assert sorted(r["reason"] for r in result.rejected) == [
        schema.CONFLICTING_IMPRESSION, schema.CONFLICTING_IMPRESSION, schema.EVENT_OF_REJECTED_IMPRESSION]


def test_watch_longer_than_ten_durations_is_rejected_not_the_example(tiny):
    result = join.join_key([_imp(tiny, video_duration=10.0)], [_ev(tiny, "watch", 101.0), _ev(tiny, "click")])
    assert result.features["watch_time"] == 0.0 and result.features["click"] == 1
    assert [r["reason"] for r in result.rejected] == [schema.WATCH_EXCEEDS_DURATION]


def test_to_example_types(tiny):
    example = join.to_example(join.join_key([_imp(tiny)], [_ev(tiny, "watch", 3.0)]).features)
    feature = example.features.feature
    assert feature["watch_history"].bytes_list.value == [b"h1", b"h2"]
    assert feature["position"].int64_list.value == [0]
    assert feature["watch_time"].float_list.value == [3.0]
    assert set(feature) == set(schema.example_feature_types())
    empty = join.to_example(join.join_key([_imp(tiny, watch_history=[])], []).features)
    assert empty.features.feature["watch_history"].WhichOneof("kind") == "bytes_list"
