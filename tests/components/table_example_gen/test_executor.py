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


# The same rows as a CSV with a header and as Parquet: ids, an int age (None: missing, NaN:
# non-finite), a string column with spaces and a quoted comma, the label source.
SAME_ROWS = [{"row_id": f"s{i}", "age": (None if i == 7 else float("nan") if i == 11 else float(20 + i % 50)),
              "job": "Not in universe, or children" if i % 5 == 0 else " Private ",
              "status": "Never married" if i % 3 == 0 else "Married",
              "income_band": "50000+." if i % 10 == 0 else "- 50000."} for i in range(60)]


def _write_same_table(tmp_path, name: str) -> str:
    """SAME_ROWS as `name` (.csv: a header row and CSV quoting; .parquet: typed columns)."""
    path = str(tmp_path / name)
    if name.endswith(".csv"):
        def cell(value):
            text = "" if value is None else str(value)
            return f'"{text}"' if "," in text else text
        lines = [", ".join(COLUMNS)] + [", ".join(cell(row[c]) for c in COLUMNS) for row in SAME_ROWS]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(SAME_ROWS), path, row_group_size=16)
    return path


def _all_examples(examples) -> dict[str, tf.train.Example]:
    return {k: v for split in rows_by_split(examples).values() for k, v in split.items()}


def _rejected_records(rejected) -> list[dict]:
    records = []
    for path in glob.glob(os.path.join(rejected.uri, "rejected-*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            records += [json.loads(line) for line in f]
    return records


def test_a_parquet_table_gives_the_examples_and_counts_of_the_same_csv(tmp_path):
    runs = {}
    for name in ("same.csv", "same.parquet"):
        (tmp_path / "data").mkdir(exist_ok=True)
        path = _write_same_table(tmp_path / "data", name)
        examples, rejected, counts = run(tmp_path, table_config(path, header=True), f"run-{name}")
        runs[name] = (_all_examples(examples), _rejected_records(rejected), counts)
    (csv_examples, csv_rejected, csv_counts), (pq_examples, pq_rejected, pq_counts) = runs.values()
    assert len(pq_examples) == len(SAME_ROWS) - 2
    assert pq_examples == csv_examples  # equal tf.Examples, row by row (the split follows the file name)
    for counts in (csv_counts, pq_counts):
        rows = counts["rows"]
        assert rows["read"] == len(SAME_ROWS) == counts["examples"]["total"] + rows["rejected"]
        assert counts["rows"]["rejected_by_reason"] == {"missing_number": 1, "non_finite": 1}
        assert counts["accounting_errors"] == []
    assert pq_counts["label_positives"] == csv_counts["label_positives"]
    assert pq_counts["rows"]["header_lines"] == 0 and csv_counts["rows"]["header_lines"] == 1
    # A Parquet row's line is its row number from 1 (s7 is row 8); the CSV's counts the header.
    assert sorted((r["line"], r["reason"], r["field"]) for r in pq_rejected) == [
        (8, "missing_number", "age"), (12, "non_finite", "age")]
    assert sorted(r["line"] for r in csv_rejected) == [9, 13]
    assert all(r["source"].endswith("same.parquet") and '"row_id": "s' in r["raw"] for r in pq_rejected)


def test_a_parquet_table_lacking_a_column_or_not_parquet_is_one_error_naming_the_file(tmp_path):
    from watchnext.core.errors import EXIT_BAD_INPUT

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = str(tmp_path / "short.pq")
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in SAME_ROWS[1].items() if k != "job"}]), path)
    with pytest.raises(parsing.TableError, match=r"short\.pq: the Parquet schema has no column \['job'\]"):
        run(tmp_path, table_config(path, header=True), "short")
    (tmp_path / "broken.parquet").write_bytes(b"row_id,age\nr1,40\n")
    with pytest.raises(parsing.TableError, match=r"broken\.parquet: cannot be read as Parquet") as e:
        run(tmp_path, table_config(str(tmp_path / "broken.parquet"), header=True), "broken")
    assert e.value.exit_code == EXIT_BAD_INPUT  # 5: the README's "unreadable input data"
