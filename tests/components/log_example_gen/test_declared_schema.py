"""LogExampleGen with a declared log schema (issue 17): a ratings log with no events log, and an
event stream whose labels are declared rules; the default schema's outputs are unchanged."""

from __future__ import annotations

import collections
import glob
import json
import os

from watchnext.components.example_gen.artifacts import RejectedRecords
from watchnext.components.log_example_gen import join, make_log_example_gen, validation
from watchnext.components.log_example_gen.executor import LOG_SCHEMA_KEY, Executor
from watchnext.core import log_schema as schema
from watchnext.core.config import load_config
from watchnext.core.log_schema_spec import LabelRule, LogSchema
from watchnext.simulator.ratings import write_rating_logs

import tensorflow as tf
from tfx.types import standard_artifacts

RATINGS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "item_ratings.yaml")
RATINGS_SCHEMA = load_config(RATINGS).log_schema

# An event stream of a shop: views and purchases of items, requests are page loads.
SHOP = LogSchema(
    impressions=(schema.Field("page", "string"), schema.Field("item", "string"),
                 schema.Field("price", "float", minimum=0),
                 schema.Field("segment", "string", required=False, default="none")),
    event_types=("view", "buy"),
    labels=(LabelRule("viewed", "any", "view"), LabelRule("spent", "sum", "buy"),
            LabelRule("last_spent", "last", "buy"),
            LabelRule("pricey", "field", field="price", threshold=10)),
    request_id="page", item_id="item", user_id="", position="")


def test_a_missing_optional_field_is_filled_not_rejected():
    record, invalid = validation.validate_impression({"page": "p", "item": "i", "price": 3.0},
                                                     log_schema=SHOP)
    assert invalid is None and record["segment"] is None
    example = join.to_example({**record, "viewed": 1, "spent": 0.0, "last_spent": 0.0, "pricey": 0}, SHOP)
    assert example.features.feature["segment"].bytes_list.value == [b"none"]


def test_declared_label_rules_over_events_and_fields():
    imp = ("f", 1, {"page": "p", "item": "i", "price": 12.0, "segment": None})
    events = [("e", n, {"page": "p", "item": "i", "event": kind, "timestamp": ts, "value": value})
              for n, (kind, ts, value) in enumerate([("view", 5, None), ("buy", 9, 4.0), ("buy", 7, 6.0)], 1)]
    result = join.join_key([imp], events, SHOP)
    assert result.features is not None
    assert {k: result.features[k] for k in SHOP.label_names} == {
        "viewed": 1, "spent": 10.0, "last_spent": 4.0, "pricey": 1}
    # A buy without a value cannot be summed: rejected; a view's value is ignored.
    assert validation.validate_event({"page": "p", "item": "i", "event": "buy", "timestamp": 1},
                                     SHOP)[1].reason == schema.MISSING_VALUE
    assert validation.validate_event({"page": "p", "item": "i", "event": "view", "timestamp": 1,
                                      "value": 3.0}, SHOP)[0]["value"] is None
    assert validation.validate_event({"page": "p", "item": "i", "event": "click", "timestamp": 1},
                                     SHOP)[1].reason == schema.UNKNOWN_EVENT


def _run(tmp_path, logs: str, log_schema: LogSchema, resolve):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    rejected = RejectedRecords()
    rejected.uri = str(tmp_path / "rejected")
    component = make_log_example_gen(logs, eval_percent=20, max_rejected_fraction=0.05, log_schema=log_schema)
    props = resolve(component)
    Executor().Do({}, {"examples": [examples], "rejected": [rejected]}, props)
    with open(os.path.join(rejected.uri, "counts.json")) as f:
        counts = json.load(f)
    split = {}
    for name in ("train", "eval"):
        files = glob.glob(os.path.join(examples.uri, f"Split-{name}", "*.gz"))
        split[name] = [tf.train.Example.FromString(r.numpy())
                       for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return props, counts, split


def test_a_ratings_log_without_events_is_ingested_row_by_row(tmp_path, resolve):
    logs = str(tmp_path / "logs")
    (folder,) = write_rating_logs(logs, days=1, ratings_per_day=600, users=40, items=30, seed=1)
    with open(os.path.join(folder, "part-00000.jsonl"), "a") as f:
        f.write(json.dumps({"user_id": "u1", "item_id": "i1", "rating": 9.0, "timestamp": 1}) + "\n")
    props, counts, split = _run(tmp_path, logs, RATINGS_SCHEMA, resolve)
    assert LOG_SCHEMA_KEY in props and not os.path.exists(os.path.join(logs, "events"))
    assert counts["impressions"]["read"] == 601 and counts["events"]["read"] == 0
    assert counts["impressions"]["rejected_by_reason"] == {"out_of_range": 1}
    assert counts["examples"]["total"] == 600 and not counts["accounting_errors"]
    train, evaluation = split["train"], split["eval"]
    assert len(train) + len(evaluation) == 600 and 60 < len(evaluation) < 180  # ~20% of rows
    for example in train[:50]:
        f = example.features.feature
        assert set(f) == {"user_id", "item_id", "rating", "timestamp", "liked"}
        assert f["liked"].int64_list.value[0] == int(f["rating"].float_list.value[0] >= 4)
    # The split is by row: a user's ratings fall in both splits.
    users = collections.defaultdict(set)
    for name, rows in split.items():
        for example in rows:
            users[example.features.feature["user_id"].bytes_list.value[0]].add(name)
    assert any(len(s) == 2 for s in users.values())


def test_the_default_schema_adds_no_exec_property(tmp_path):
    component = make_log_example_gen(str(tmp_path), eval_percent=20, max_rejected_fraction=0.01)
    assert component.exec_properties.get(LOG_SCHEMA_KEY) is None


def test_a_declared_event_stream_through_the_beam_join(tmp_path):
    from watchnext.components.log_example_gen import transforms
    from watchnext.core.config.logs import validate_log_schema

    import apache_beam as beam
    from apache_beam.testing import test_pipeline
    from apache_beam.testing.util import assert_that, equal_to

    validate_log_schema(SHOP)
    imp, ev = tmp_path / "imp.jsonl", tmp_path / "ev.jsonl"
    imp.write_text("\n".join(json.dumps(r) for r in [
        {"page": "p1", "item": "a", "price": 20.0, "segment": "new"},
        {"page": "p1", "item": "b", "price": 5.0},
        {"page": "p2", "item": "a", "price": -1.0}]) + "\n")
    ev.write_text("\n".join(json.dumps(r) for r in [
        {"page": "p1", "item": "a", "event": "view", "timestamp": 1},
        {"page": "p1", "item": "a", "event": "buy", "timestamp": 2, "value": 20.0},
        {"page": "p1", "item": "b", "event": "view", "timestamp": 3},
        {"page": "p9", "item": "z", "event": "view", "timestamp": 4}]) + "\n")

    def labels(example):
        f = example.features.feature
        return (f["page"].bytes_list.value[0].decode(), f["item"].bytes_list.value[0].decode(),
                f["segment"].bytes_list.value[0].decode(), f["viewed"].int64_list.value[0],
                f["spent"].float_list.value[0], f["pricey"].int64_list.value[0])

    with test_pipeline.TestPipeline() as p:
        out = p | transforms.JoinLogsToExamples([str(imp)], [str(ev)], log_schema=SHOP)
        assert_that(out[transforms.EXAMPLES] | beam.Map(labels),
                    equal_to([("p1", "a", "new", 1, 20.0, 1), ("p1", "b", "none", 1, 0.0, 0)]),
                    label="Examples")
        assert_that(out[transforms.REJECTED] | beam.Map(lambda r: (r["log"], r["reason"])),
                    equal_to([("impressions", "out_of_range"), ("events", "orphan_event")]), label="Rejected")


# --- The vectorised path against the per-record reference path, for declared schemas. ---------------

def _features(serialized: bytes) -> str:
    """An example feature by feature (kind and values), as sortable text: map order is not compared."""
    example = tf.train.Example.FromString(serialized)
    features = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = getattr(feature, kind).value
        features[name] = [kind, [v.decode() if isinstance(v, bytes) else v for v in values]]
    return json.dumps(features, sort_keys=True)


def _join_both_ways(beam_join, tmp_path, impressions: list[str], events: list[str], log_schema: LogSchema
                    ) -> tuple[dict[str, list], dict[str, list]]:
    """Both logs through JoinLogsToExampleBatches per record and vectorised: sorted examples (with the
    split's hash input), rejections and counts of each."""
    return tuple(beam_join(tmp_path / f"vectorised={vectorised}", impressions, events, vectorised=vectorised,
                           log_schema=log_schema, example_line=lambda rid, x: json.dumps([rid, _features(x)]))
                 for vectorised in (False, True))


def _lines(path, records: list) -> str:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return str(path)


def test_the_vectorised_path_equals_the_per_record_path_for_a_declared_event_stream(tmp_path, monkeypatch,
                                                                                   beam_join):
    from watchnext.components.log_example_gen import columnar, transforms

    monkeypatch.setattr(transforms, "BLOCK_RECORDS", 5)  # several blocks per file, a refused one among them
    good = [{"page": f"p{i // 3}", "item": f"i{i % 3}", "price": float(i), "segment": "s" if i % 2 else None}
            for i in range(12)]
    good[4].pop("segment")  # absent optional field: its default, like null
    imp_a = _lines(tmp_path / "imp-a.jsonl", [*good[:6], {**good[0]},  # an exact duplicate
                                             {"page": "p9", "item": "i0", "price": 1.0, "extra": [1, 2]}])
    imp_b = _lines(tmp_path / "imp-b.jsonl", [
        *good[6:],
        {"page": "p8", "item": "i1", "price": 2.0}, {"page": "p8", "item": "i1", "price": 3.0},  # conflicting
        {"page": "p7", "item": "i0", "price": "cheap"},  # wrong type
        {"page": "p7", "item": "i1"},  # missing required field
        {"page": "p7", "item": "i2", "price": -1.0},  # out of range
        {"page": "", "item": "i3", "price": 1.0},  # empty id
        {"page": "p7", "item": "i4", "price": 1.0, "segment": 5},  # wrong type, optional field
        '{"page": "p7", "item": "i5", "price": ',  # malformed JSON
        {"page": "p6", "item": "i0", "price": 30.0}, {"page": "p6", "item": "i1", "price": 3.0}])
    ev = [{"page": "p0", "item": "i0", "event": "view", "timestamp": 1},
          {"page": "p0", "item": "i0", "event": "view", "timestamp": 1},  # duplicate
          {"page": "p0", "item": "i1", "event": "buy", "timestamp": 5, "value": 4.0},
          {"page": "p0", "item": "i1", "event": "buy", "timestamp": 3, "value": 6.5},  # sum 10.5, last 4.0
          {"page": "p1", "item": "i0", "event": "view", "timestamp": 2, "value": 9.0},  # value ignored
          {"page": "p1", "item": "i1", "event": "buy", "timestamp": 2},  # missing value
          {"page": "p1", "item": "i2", "event": "click", "timestamp": 2},  # unknown event
          {"page": "p2", "item": "i0", "event": "buy", "timestamp": -1, "value": 1.0},  # out of range
          {"page": "p2", "item": "i1", "event": "buy", "timestamp": 7, "value": 2.0},
          {"page": "p2", "item": "i1", "event": "buy", "timestamp": 7, "value": 3.0},  # same time: by line
          {"page": "p8", "item": "i1", "event": "view", "timestamp": 1},  # of a rejected impression
          {"page": "p7", "item": "i2", "event": "view", "timestamp": 1},  # of a rejected impression
          {"page": "zz", "item": "i0", "event": "buy", "timestamp": 1, "value": 1.0},  # orphan
          {"page": "p6", "item": "i0", "event": "buy", "timestamp": 4, "value": 30.0},
          {"page": "p6", "item": "i1", "event": "view", "timestamp": 4, "value": None},
          "[1, 2]"]  # not an object
    ev_a = _lines(tmp_path / "ev-a.jsonl", ev[:9])
    ev_b = _lines(tmp_path / "ev-b.jsonl", [*ev[9:], {"page": "p2", "item": "i1", "event": "buy",
                                                        "timestamp": 6, "value": 8.0}])
    reference, vectorised = _join_both_ways(beam_join, tmp_path, [imp_a, imp_b], [ev_a, ev_b], SHOP)

    assert vectorised["examples"] == reference["examples"]
    assert vectorised["rejected"] == reference["rejected"]
    assert vectorised["counts"] == reference["counts"]
    [counts] = vectorised["counts"]
    assert counts["impressions.read"] == 24 and counts["events.read"] == 17
    for reason, n in {"duplicate_impression": 1, "conflicting_impression": 2, "wrong_type": 2,
                      "missing_field": 1, "out_of_range": 2, "malformed_json": 1}.items():
        assert counts[f"impressions.rejected.{reason}"] == n, reason
    for reason, n in {"duplicate_event": 1, "missing_value": 1, "unknown_event": 1, "out_of_range": 1,
                      "event_of_rejected_impression": 2, "orphan_event": 1, "not_an_object": 1}.items():
        assert counts[f"events.rejected.{reason}"] == n, reason
    assert len(vectorised["examples"]) == 15
    examples = {(f["page"][1][0], f["item"][1][0]): f for f in
                (json.loads(json.loads(x)[1]) for x in vectorised["examples"])}
    assert examples[("p0", "i1")]["spent"][1] == [10.5] and examples[("p0", "i1")]["last_spent"][1] == [4.0]
    assert examples[("p2", "i1")]["last_spent"][1] == [3.0] and examples[("p2", "i1")]["spent"][1] == [13.0]
    assert examples[("p1", "i1")]["segment"][1] == ["none"] and examples[("p1", "i0")]["segment"][1] == ["s"]
    assert examples[("p6", "i0")]["pricey"] == ["int64_list", [1]]
    # The good lines did take the vectorised checks (not the per-record fallback).
    for log_name, path in (("impressions", imp_a), ("events", ev_a)):
        rows = [x.encode() for x in open(path).read().splitlines()][:2]
        table = columnar.parse_block(log_name, rows, [1, 2], SHOP)
        assert table is not None and columnar.clean_mask(log_name, table, log_schema=SHOP).all()


def test_the_vectorised_path_equals_the_per_record_path_for_the_ratings_log(tmp_path, monkeypatch, beam_join):
    from watchnext.components.log_example_gen import transforms

    monkeypatch.setattr(transforms, "BLOCK_RECORDS", 64)
    (folder,) = write_rating_logs(str(tmp_path / "logs"), days=1, ratings_per_day=300, users=30, items=20,
                                  seed=2)
    path = os.path.join(folder, "part-00000.jsonl")
    first = json.loads(open(path).readline())
    with open(path, "a") as f:
        for bad in ({"user_id": "u1", "item_id": "i1", "rating": 9.0, "timestamp": 1},  # out of range
                    {"user_id": "u1", "item_id": "i2", "rating": "5", "timestamp": 1},  # wrong type
                    {"user_id": "u1", "item_id": "i3", "timestamp": 1},  # missing required field
                    {"user_id": "u1", "item_id": "i4", "rating": 4.0, "timestamp": 1.5},  # not an int
                    first,  # an exact copy (then rejected too: the key has a conflicting row)
                    {**first, "rating": 1.0 if first["rating"] != 1.0 else 2.0}):  # conflicting
            f.write(json.dumps(bad) + "\n")
        f.write('{"user_id": "u1", "item_id"\n')  # malformed JSON
    reference, vectorised = _join_both_ways(beam_join, tmp_path, [path], [], RATINGS_SCHEMA)
    assert vectorised == reference
    [counts] = vectorised["counts"]
    assert counts["impressions.read"] == 307 and len(vectorised["examples"]) == 299
    assert {k: n for k, n in counts.items() if k.startswith("impressions.rejected.")} == {
        "impressions.rejected.out_of_range": 1, "impressions.rejected.wrong_type": 2,
        "impressions.rejected.missing_field": 1, "impressions.rejected.malformed_json": 1,
        "impressions.rejected.conflicting_impression": 3}  # the copy and the two it conflicts with
    # The split's hash input of a row is its length-prefixed key (LogSchema.partition_value).
    rid, features = json.loads(vectorised["examples"][0])
    features = json.loads(features)
    user, item = features["user_id"][1][0], features["item_id"][1][0]
    assert rid == f"{len(user)}:{user}{item}"
    assert set(features) == {"user_id", "item_id", "rating", "timestamp", "liked"}


def test_clean_mask_agrees_with_the_per_record_validation_for_declared_schemas_line_by_line():
    from watchnext.components.log_example_gen import columnar, transforms

    slotted = LogSchema(  # an optional position (bounded by max_position when present) and an int default
        impressions=(schema.Field("user_id", "string"), schema.Field("item_id", "string"),
                     schema.Field("slot", "int", required=False, minimum=0),
                     schema.Field("tier", "int", required=False, default=2, minimum=1, maximum=3),
                     schema.Field("kind", "string", allowed=("a", "b"))),
        event_types=("open",), labels=(LabelRule("opened", "any", "open"),),
        request_id="", item_id="item_id", user_id="user_id", position="slot")
    base = {"user_id": "u", "item_id": "i", "kind": "a"}
    impressions = [base, {**base, "slot": 3}, {**base, "slot": None, "tier": None}, {**base, "slot": 25},
                   {**base, "slot": -1}, {**base, "tier": 4}, {**base, "tier": 3}, {**base, "kind": "c"},
                   {**base, "user_id": ""}, {**base, "item_id": None}, {**base, "slot": 2.0}]
    events = [{"user_id": "u", "item_id": "i", "event": "open", "timestamp": 1, "value": 2.0},
              {"user_id": "u", "item_id": "i", "event": "shut", "timestamp": 1},
              {"user_id": "u", "item_id": "i", "event": "open", "timestamp": -1},
              {"user_id": "u", "item_id": "i", "event": "open", "timestamp": 1, "value": float("nan")}]
    shop_events = [{"page": "p", "item": "i", "event": "buy", "timestamp": 1},
                   {"page": "p", "item": "i", "event": "buy", "timestamp": 1, "value": 2.0},
                   {"page": "p", "item": "i", "event": "view", "timestamp": 1, "value": 2.0}]
    cases = [(slotted, "impressions", impressions), (slotted, "events", events),
             (SHOP, "events", shop_events)]
    arrow_read = 0
    for log_schema, log_name, records in cases:
        for n, raw in enumerate(records, start=1):
            text = json.dumps(raw).encode()
            record, rejected, _ = transforms.parse_line(log_name, "f", n, text, 20, log_schema)
            table = columnar.parse_block(log_name, [text], [n], log_schema)
            if table is None:  # refused by the Arrow reader: the per-record path decides alone
                continue
            arrow_read += 1
            [ok] = columnar.clean_mask(log_name, table, 20, log_schema).tolist()
            assert ok == (record is not None), (raw, rejected)
            if ok and log_name == "events":
                [row] = columnar.clean_events(table, log_schema).drop([columnar.LINE]).to_pylist()
                assert row == record
            elif ok:
                [row] = table.drop([columnar.LINE]).to_pylist()
                assert row == record
    assert arrow_read >= 15
