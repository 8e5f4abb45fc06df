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
