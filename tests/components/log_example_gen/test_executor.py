"""The whole executor on real artifacts: simulated logs plus injected bad records."""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os

from watchnext.components.example_gen.artifacts import RejectedRecords
from watchnext.components.log_example_gen import make_log_example_gen
from watchnext.components.log_example_gen.executor import Executor
from watchnext.simulator.simulate import simulate

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

SPAN = 20260101


def _run(tmp_path, logs_dir: str, max_rejected_fraction: float, resolve, name: str = "run"):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / name / "examples")
    rejected = RejectedRecords()
    rejected.uri = str(tmp_path / name / "rejected")
    props = resolve(make_log_example_gen(logs_dir, eval_percent=20,
                                         max_rejected_fraction=max_rejected_fraction))
    outputs = {"examples": [examples], "rejected": [rejected]}
    try:
        Executor().Do({}, outputs, props)
    finally:
        counts_path = os.path.join(rejected.uri, "counts.json")
        counts = json.load(open(counts_path)) if os.path.exists(counts_path) else None
    return examples, rejected, counts


def _read_examples(uri: str, split: str) -> list[tf.train.Example]:
    files = glob.glob(os.path.join(uri, f"Split-{split}", "*.gz"))
    return [tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


@pytest.fixture
def simulated_logs(tmp_path) -> str:
    logs = str(tmp_path / "logs")
    simulate(logs, impressions_per_day=2000, days=1, seed=3, shards=2)
    imp_dir, ev_dir = f"{logs}/impressions/span={SPAN}", f"{logs}/events/span={SPAN}"
    with gzip.open(f"{ev_dir}/part-00000-of-00002.jsonl.gz", "rt") as f:
        first_event = f.readline().strip()
    with open(f"{imp_dir}/zz-bad.jsonl", "w") as f:
        f.write("{oops\n" + json.dumps({"request_id": "x"}) + "\n")
    with open(f"{ev_dir}/zz-bad.jsonl", "w") as f:
        orphan = {"request_id": "nope", "candidate_video_id": "v1", "event": "click", "timestamp": 1}
        f.write(first_event + "\n" + json.dumps(orphan) + "\n")
    open(f"{imp_dir}/_SUCCESS", "w").close()  # marker files are skipped
    return logs


def test_executor_writes_examples_rejects_and_counts(tmp_path, simulated_logs, resolve):
    examples, rejected, counts = _run(tmp_path, simulated_logs, 0.01, resolve)

    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    by_split = {s: _read_examples(examples.uri, s) for s in ("train", "eval")}
    assert {s: len(v) for s, v in by_split.items()} == {s: counts["examples"][s] for s in by_split}
    assert counts["examples"]["total"] == 2000
    assert 0.12 < len(by_split["eval"]) / 2000 < 0.28  # eval_percent=20 of requests
    split_of_request = collections.defaultdict(set)
    for split, exs in by_split.items():
        for ex in exs:
            split_of_request[ex.features.feature["request_id"].bytes_list.value[0]].add(split)
    assert all(len(s) == 1 for s in split_of_request.values())  # a request never straddles splits
    labels = collections.Counter()
    for ex in by_split["train"] + by_split["eval"]:
        f = ex.features.feature
        labels["click"] += f["click"].int64_list.value[0]
        labels["rating_present"] += f["rating_present"].int64_list.value[0]
    assert labels["click"] == counts["events"]["merged_by_event"]["click"] > 0

    # Records in = examples out + rejected, per log; the injected bad records are all there.
    assert counts["accounting_errors"] == []
    assert counts["impressions"]["read"] == 2002 and counts["impressions"]["blank_lines"] == 0
    assert counts["impressions"]["rejected_by_reason"] == {"malformed_json": 1, "missing_field": 1}
    assert counts["events"]["rejected_by_reason"] == {"duplicate_event": 1, "orphan_event": 1}
    assert counts["events"]["read"] == counts["events"]["merged"] + 2
    assert not any("_SUCCESS" in p for p in counts["files"]["impressions"])
    rows = []
    for path in glob.glob(os.path.join(rejected.uri, "rejected-*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            rows += [json.loads(x) for x in f]
    # The copy read first (by file, line) is kept: the injected copy is the duplicate.
    assert sorted((r["log"], os.path.basename(r["source"]), r["line"], r["reason"]) for r in rows) == [
        ("events", "zz-bad.jsonl", 1, "duplicate_event"),
        ("events", "zz-bad.jsonl", 2, "orphan_event"),
        ("impressions", "zz-bad.jsonl", 1, "malformed_json"),
        ("impressions", "zz-bad.jsonl", 2, "missing_field"),
    ]

    # The join's spilled blocks are gone: the artifact holds its splits only.
    assert sorted(os.listdir(examples.uri)) == ["Split-eval", "Split-train"]

    props = rejected.mlmd_artifact.custom_properties
    assert props["span"].int_value == SPAN
    assert props["examples_eval"].int_value == len(by_split["eval"])
    assert props["impressions_rejected"].int_value == 2
    assert rejected.get_json_value_custom_property("rejected_by_reason")["events.orphan_event"] == 1
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


def test_executor_fails_above_the_rejected_fraction(tmp_path, tiny_logs, resolve):
    with pytest.raises(RuntimeError) as failure:
        _run(tmp_path, tiny_logs["dir"], 0.01, resolve)
    message = str(failure.value)
    assert "span 20260101" in message and "max_rejected_fraction=0.01" in message
    assert "impressions.conflicting_impression=2" in message and "rejected 10 impressions" in message
    counts = json.load(open(tmp_path / "run" / "rejected" / "counts.json"))
    assert counts["impressions"]["read"] == counts["examples"]["total"] + counts["impressions"]["rejected"]
    assert counts["events"]["read"] == counts["events"]["merged"] + counts["events"]["rejected"]


@pytest.mark.parametrize("empty_log, message", [
    ("impressions", r"span 20260101 has no impression records in \['.*part-0\.jsonl'\]"),
    ("events", r"span 20260101 has impressions but no event records in \['.*part-0\.jsonl\.gz'\] "
               r"\(every label would be 0\)"),
], ids=["no_impressions", "no_events"])
def test_span_whose_files_have_no_lines_fails_naming_the_span(tmp_path, tiny, resolve, empty_log, message):
    paths = tiny.write_logs(str(tmp_path / "logs"), SPAN)
    with open(paths[empty_log], "wb") as f:  # the file exists, with zero lines (a gzip of nothing)
        f.write(gzip.compress(b"") if paths[empty_log].endswith(".gz") else b"")
    with pytest.raises(RuntimeError, match=message):
        _run(tmp_path, str(tmp_path / "logs"), 1.0, resolve)
    counts = json.load(open(tmp_path / "run" / "rejected" / "counts.json"))
    assert counts[empty_log]["read"] == 0 and counts["accounting_errors"] == []


def test_split_batch_puts_every_candidate_of_a_request_in_one_split_at_the_configured_rate():
    """SplitBatch is the split the executor writes and the simulated-data path (pipeline/datasets.py)
    reuses: a request's candidates stay together, and eval gets ~eval_percent of the requests."""
    from watchnext.components.log_example_gen import make_output_config, transforms
    from watchnext.components.log_example_gen.executor import SplitBatch

    split = SplitBatch.from_split_config(make_output_config(20).split_config)
    assert split.split_names == ["train", "eval"]
    requests = [f"r{i}" for i in range(2000)]
    batch = transforms.ExampleBatch(0, [r for r in requests for _ in range(3)],
                                    [f"{r}/{k}".encode() for r in requests for k in range(3)])
    split.start_bundle()
    found = {"train": [], "eval": []}
    for out in split.process(batch):  # without split folders: one tagged output per example
        found[out.tag].append(out.value.decode().split("/")[0])
    by_split = {name: set(found[name]) for name in found}
    assert not by_split["train"] & by_split["eval"]
    assert by_split["train"] | by_split["eval"] == set(requests)
    assert all(len(found[name]) == 3 * len(by_split[name]) for name in found)
    assert 0.17 < len(by_split["eval"]) / len(requests) < 0.23
