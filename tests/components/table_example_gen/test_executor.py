"""The executor on real artifacts: a small CSV with known bad rows, split by seed."""

from __future__ import annotations

import glob
import gzip
import json
import os

from watchnext.components.example_gen.artifacts import RejectedRecords
from watchnext.components.table_example_gen import make_table_example_gen, parsing
from watchnext.components.table_example_gen.executor import Executor
from watchnext.core.config import from_dict

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

COLUMNS = ["row_id", "age", "job", "status", "income_band"]
GOOD_ROWS = 400
# Line number (1-based, in the header-less file) → expected rejection reason.
BAD_LINES = {101: "wrong_column_count", 202: "not_a_number", 303: "missing_number", 404: "malformed_row"}


def table_config(path: str, seed: int = 0, header: bool = False, max_rejected_fraction: float = 0.05):
    return from_dict({
        "data": {"source": "table", "max_rejected_fraction": max_rejected_fraction,
                 "table": {"path": path, "columns": [] if header else COLUMNS, "train_percent": 50,
                           "eval_percent": 25, "test_percent": 25, "split_seed": seed}},
        "features": {"ids": [{"name": "job", "vocabulary": "job"}], "numeric": ["age"], "log1p_numeric": [],
                     "position": "", "device": "", "request_id": ""},
        "heads": [{"name": "rich", "type": "binary", "label": "rich",
                   "label_from": {"column": "income_band", "positive_values": ["50000+."]}},
                  {"name": "single", "type": "binary", "label": "single",
                   "label_from": {"column": "status", "positive_values": ["Never married"]}}],
        "model": {"position_mode": "none"},
    })


def write_table(path: str, header: bool = False) -> int:
    """GOOD_ROWS rows plus BAD_LINES and one blank line; returns the number of data rows."""
    lines, good = [], 0
    while good < GOOD_ROWS:
        n = len(lines) + 1
        if n in BAD_LINES:
            lines.append({"wrong_column_count": f"r{n}, 40, Private",
                          "not_a_number": f"r{n}, forty, Private, Married, - 50000.",
                          "missing_number": f"r{n}, , Private, Married, - 50000.",
                          "malformed_row": f'r{n}, 40, "Private, Married, - 50000.'}[BAD_LINES[n]])
            continue
        if n == 250:
            lines.append("   ")  # blank: not a row
            continue
        status = "Never married" if good % 3 == 0 else "Married-civilian spouse present"
        band = "50000+." if good % 10 == 0 else "- 50000."
        job = "Private" if good % 2 else "Local government"
        lines.append(f"r{n}, {20 + good % 50}, {job}, {status}, {band}")
        good += 1
    text = "\n".join(([", ".join(COLUMNS)] if header else []) + lines) + "\n"
    with open(path, "wb") as f:
        f.write(gzip.compress(text.encode(), mtime=0))
    return GOOD_ROWS + len(BAD_LINES)


def run(tmp_path, config, name: str):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / name / "examples")
    rejected = RejectedRecords()
    rejected.uri = str(tmp_path / name / "rejected")
    from google.protobuf import message
    from tfx.utils import proto_utils

    gen = make_table_example_gen(config)
    props = {k: proto_utils.proto_to_json(v) if isinstance(v, message.Message) else v
             for k, v in gen.exec_properties.items() if v is not None}
    props = gen.driver_class(None).resolve_exec_properties(props, None, None)
    Executor().Do({}, {"examples": [examples], "rejected": [rejected]}, props)
    with open(os.path.join(rejected.uri, "counts.json")) as f:
        counts = json.load(f)
    return examples, rejected, counts


def rows_by_split(examples) -> dict[str, dict[str, tf.train.Example]]:
    out = {}
    for split in artifact_utils.decode_split_names(examples.split_names):
        files = glob.glob(os.path.join(examples.uri, f"Split-{split}", "*.gz"))
        parsed = [tf.train.Example.FromString(r.numpy())
                  for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
        out[split] = {e.features.feature["row_id"].bytes_list.value[0].decode(): e for e in parsed}
    return out


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("table") / "census-like.csv.gz")
    write_table(path)
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, table):
    tmp = tmp_path_factory.mktemp("run")
    examples, rejected, counts = run(tmp, table_config(table), "seed0")
    return examples, rejected, counts, rows_by_split(examples)


def test_every_row_is_written_or_rejected_with_file_line_and_reason(first_run, table):
    _, rejected, counts, rows = first_run
    assert counts["rows"]["read"] == GOOD_ROWS + len(BAD_LINES)
    assert counts["rows"]["blank_lines"] == 1
    assert counts["examples"]["total"] == GOOD_ROWS == sum(len(v) for v in rows.values())
    assert counts["rows"]["read"] == counts["examples"]["total"] + counts["rows"]["rejected"]
    assert counts["accounting_errors"] == []
    assert {s: len(v) for s, v in rows.items()} == {s: counts["examples"][s] for s in rows}
    records = []
    for path in glob.glob(os.path.join(rejected.uri, "rejected-*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            records += [json.loads(line) for line in f]
    assert {r["line"]: r["reason"] for r in records} == BAD_LINES
    assert all(r["source"] == table and r["log"] == "rows" and r["raw"].startswith("r") for r in records)
    assert counts["rows"]["rejected_by_reason"] == {reason: 1 for reason in BAD_LINES.values()}
    assert next(r for r in records if r["reason"] == "not_a_number")["field"] == "age"


def test_types_and_derived_labels(first_run):
    *_, counts, rows = first_run
    every = {k: v for split in rows.values() for k, v in split.items()}
    example = every["r1"].features.feature  # good row 0: never married, income 50000+.
    assert example["age"].float_list.value == [20.0]
    assert example["job"].bytes_list.value == [b"Local government"]
    assert example["status"].bytes_list.value == [b"Never married"]  # the raw column is kept
    assert example["single"].int64_list.value == [1] and example["rich"].int64_list.value == [1]
    positives = {label: sum(e.features.feature[label].int64_list.value[0] for e in every.values())
                 for label in ("rich", "single")}
    assert positives == counts["label_positives"] == {"rich": GOOD_ROWS // 10, "single": -(-GOOD_ROWS // 3)}


def test_splits_follow_the_percentages_and_are_fixed_by_the_seed(first_run, table):
    *_, rows = first_run
    shares = {s: len(v) / GOOD_ROWS for s, v in rows.items()}
    assert abs(shares["train"] - 0.50) < 0.1 and abs(shares["eval"] - 0.25) < 0.1
    assert abs(shares["test"] - 0.25) < 0.1
    # Each row sits where the seeded hash of (seed, file, line) puts it: the same seed gives
    # the same split on every run, and seed 1 would move many rows.
    names = ["train", "eval", "test"]
    placed = {row_id: split for split, by_id in rows.items() for row_id in by_id}
    line = {row_id: int(row_id[1:]) for row_id in placed}  # row r<n> is on line n
    assert placed == {r: names[parsing.split_index(0, table, line[r], [50, 75, 100])] for r in placed}
    moved = sum(placed[r] != names[parsing.split_index(1, table, line[r], [50, 75, 100])] for r in placed)
    assert moved > GOOD_ROWS // 4


def test_a_header_row_names_the_columns(tmp_path):
    path = str(tmp_path / "with-header.csv.gz")
    write_table(path, header=True)
    _, _, counts = run(tmp_path, table_config(path, header=True), "header")
    assert counts["rows"]["header_lines"] == 1
    assert counts["examples"]["total"] == GOOD_ROWS


def test_too_many_rejected_rows_fail_the_run_naming_the_limit(tmp_path, table):
    with pytest.raises(RuntimeError, match=r"exceeds max_rejected_fraction=0\.001.*not_a_number=1"):
        run(tmp_path, table_config(table, max_rejected_fraction=0.001), "strict")


def test_a_missing_table_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no files match .*nothing\.csv.*data\.table\.path"):
        run(tmp_path, table_config(str(tmp_path / "nothing.csv")), "missing")
