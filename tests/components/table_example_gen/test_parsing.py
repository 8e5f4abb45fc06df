"""Rows → typed values, derived labels and seeded splits, without Beam."""

from __future__ import annotations

import collections
import gzip

from watchnext.components.table_example_gen import parsing
from watchnext.components.table_example_gen.parsing import TableSpec

import pytest

COLUMNS = ("age", "job", "status", "income_band")
SPEC = TableSpec(columns=COLUMNS, numeric=("age",),
                 labels={"rich": ("income_band", ("50000+.",)), "single": ("status", ("Never married",))},
                 required=COLUMNS, split_seed=3)


def _parse(line: str):
    fields, invalid = parsing.split_fields(line.encode(), ",")
    assert invalid is None
    return parsing.parse_row(fields, COLUMNS, SPEC)


def test_fields_are_stripped_typed_and_labels_derived():
    record, invalid = _parse(' 38, Private, Never married, 50000+.')
    assert invalid is None
    assert record == {"age": 38.0, "job": "Private", "status": "Never married", "income_band": "50000+.",
                      "rich": 1, "single": 1}
    record, _ = _parse('2, "Not in universe, or children", Married, - 50000.')
    assert record["job"] == "Not in universe, or children"  # a quoted comma is not a separator
    assert (record["rich"], record["single"]) == (0, 0)


@pytest.mark.parametrize(("line", "reason", "field"), [
    ("38, Private, Never married", parsing.WRONG_COLUMN_COUNT, ""),
    ("38, Private, Never married, x, y", parsing.WRONG_COLUMN_COUNT, ""),
    ("old, Private, Never married, x", parsing.NOT_A_NUMBER, "age"),
    (", Private, Never married, x", parsing.MISSING_NUMBER, "age"),
    ("nan, Private, Never married, x", parsing.NON_FINITE, "age"),
    ("inf, Private, Never married, x", parsing.NON_FINITE, "age"),
])
def test_bad_rows_are_rejected_with_reason_and_field(line, reason, field):
    record, invalid = _parse(line)
    assert record is None
    assert (invalid.reason, invalid.field) == (reason, field)


def test_undecodable_or_unsplittable_lines_are_malformed():
    assert parsing.split_fields(b"\xff\xfe, 1", ",")[1].reason == parsing.MALFORMED_ROW
    assert parsing.split_fields(b'1, "open quote', ",")[1].reason == parsing.MALFORMED_ROW


def test_split_is_fixed_by_the_seed_and_follows_the_percentages():
    buckets = [50, 75, 100]
    lines = range(1, 20001)
    first = [parsing.split_index(0, "/a/census.gz", n, buckets) for n in lines]
    assert first == [parsing.split_index(0, "/elsewhere/census.gz", n, buckets) for n in lines]  # name only
    other = [parsing.split_index(1, "/a/census.gz", n, buckets) for n in lines]
    assert sum(a != b for a, b in zip(first, other, strict=True)) > 5000  # another seed, another split
    shares = collections.Counter(first)
    for index, expected in enumerate((0.50, 0.25, 0.25)):
        assert abs(shares[index] / len(lines) - expected) < 0.015  # ~4 binomial SEs at n = 20000


def test_header_row_names_the_columns_and_must_hold_the_required_ones():
    spec = TableSpec(numeric=("age",), labels={"rich": ("income_band", ("50000+.",))},
                     required=("age", "income_band"))
    names = parsing.header_columns(b"age, income_band, extra", spec, "t.csv")
    assert names == ("age", "income_band", "extra")
    with pytest.raises(parsing.TableError, match=r"t\.csv: the header has no column \['income_band'\]"):
        parsing.header_columns(b"age, job", spec, "t.csv")
    with pytest.raises(parsing.TableError, match="derived label"):
        parsing.header_columns(b"age, income_band, rich", spec, "t.csv")


def test_examples_type_strings_numbers_and_labels():
    import tensorflow as tf

    record, _ = _parse("38, Private, Never married, 50000+.")
    example = tf.train.Example.FromString(parsing.to_example(record, SPEC)).features.feature
    assert example["age"].float_list.value == [38.0]
    assert example["job"].bytes_list.value == [b"Private"]
    assert example["rich"].int64_list.value == [1] and example["single"].int64_list.value == [1]


def test_spec_round_trips_through_json():
    assert TableSpec.from_json(SPEC.to_json()) == SPEC


def test_files_are_read_line_by_line_with_numbers_gzip_or_not(tmp_path):
    plain, packed = tmp_path / "t.csv", tmp_path / "t.csv.gz"
    plain.write_bytes(b"a,b\n\n1,2\r\n")
    packed.write_bytes(gzip.compress(b"a,b\n\n1,2\n"))
    expected = [(1, b"a,b"), (2, None), (3, b"1,2")]
    assert list(parsing.read_table_file(str(plain))) == expected
    assert list(parsing.read_table_file(str(packed))) == expected
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(parsing.TableError, match="cannot be read"):
        list(parsing.read_table_file(str(tmp_path / "bad.csv.gz")))


def test_parquet_values_become_the_fields_a_csv_line_of_the_same_data_splits_into():
    record = {"age": 38, "job": b" Private ", "status": None, "income_band": 1.5}
    assert parsing.parquet_fields(record, COLUMNS) == (["38", "Private", "", "1.5"], None)
    fields, invalid = parsing.parquet_fields({**record, "job": [1, 2]}, COLUMNS)
    assert fields is None and (invalid.reason, invalid.field) == (parsing.MALFORMED_ROW, "job")
    assert parsing.parquet_fields({**record, "job": b"\xff"}, COLUMNS)[1].reason == parsing.MALFORMED_ROW
    record, invalid = parsing.parse_row(parsing.parquet_fields(
        {"age": None, "job": "x", "status": "s", "income_band": "b"}, COLUMNS)[0], COLUMNS, SPEC)
    assert (invalid.reason, invalid.field) == (parsing.MISSING_NUMBER, "age")


def test_the_format_follows_the_name_and_a_parquet_file_named_csv_is_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert parsing.is_parquet("gs://b/t/part-0.parquet") and parsing.is_parquet("T.PQ")
    assert not parsing.is_parquet("t.csv.gz") and not parsing.is_parquet("t.tsv")
    path = str(tmp_path / "t.parquet")
    pq.write_table(pa.Table.from_pylist([{"age": 1.0, "income_band": "x"}, {"age": 2.0, "income_band": "y"}]),
                   path)
    spec = TableSpec(numeric=("age",), required=("age",))
    columns, rows = parsing.read_parquet_file(path, spec)
    assert columns == ("age", "income_band")
    assert list(rows) == [(1, {"age": 1.0, "income_band": "x"}), (2, {"age": 2.0, "income_band": "y"})]
    assert parsing.read_parquet_file(path, TableSpec(columns=("income_band",)))[0] == ("income_band",)
    (tmp_path / "t.csv").write_bytes(open(path, "rb").read())
    with pytest.raises(parsing.TableError, match=r"t\.csv: is a Parquet file but is read as CSV"):
        list(parsing.read_table_file(str(tmp_path / "t.csv")))
