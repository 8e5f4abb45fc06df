"""components/example_gen: the ExampleGen base's light helpers and the properties it records."""

from __future__ import annotations

from watchnext.components.example_gen.artifacts import RejectedRecords
from watchnext.components.example_gen.executor import record_properties
from watchnext.core import records


def test_accounting_error_is_none_only_when_in_equals_out_plus_rejected():
    assert records.accounting_error("rows", 10, {"examples": 8, "rejected": 2}) is None
    assert (records.accounting_error("rows", 10, {"examples": 8, "rejected": 1})
            == "rows: 10 read != 8 examples + 1 rejected")
    assert (records.accounting_error("events", 5, {"merged": 3, "rejected": 1})
            == "events: 5 read != 3 merged + 1 rejected")


def test_rejection_row_and_raw_text():
    row = records.rejection("rows", "/data/t.csv", 7, records.Invalid("not_a_number", "age", "'x'"), "a,x")
    assert row == {"log": "rows", "source": "/data/t.csv", "line": 7, "reason": "not_a_number",
                   "field": "age", "detail": "'x'", "raw": "a,x"}
    assert records.raw_text(b"caf\xc3\xa9") == "café"
    assert records.raw_text({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    long = records.raw_text(b"x" * (records.RAW_TEXT_LIMIT + 50))
    assert len(long) == records.RAW_TEXT_LIMIT + 1 and long.endswith("…")


def test_markdown_reasons_escape_pipes_and_marker_files_are_not_data():
    table = records.markdown_reasons({"bad": "a | b"})
    assert table.splitlines() == ["| Reason | Meaning |", "|---|---|", "| `bad` | a \\| b |"]
    assert records.is_marker_file("/x/_SUCCESS") and records.is_marker_file("/x/.hidden")
    assert not records.is_marker_file("/x/part-0.csv")
    assert records.by_prefix({"rows.rejected.a": 1, "rows.read": 3, "rows.rejected.b": 2},
                             "rows.rejected.") == {"a": 1, "b": 2}


def test_record_properties_sets_each_value_by_its_type():
    artifact = RejectedRecords()
    record_properties(artifact, {"rows_read": 10, "rejected_fraction": 0.25, "source": "table",
                                 "rejected_by_reason": {"not_a_number": 2}})
    assert artifact.get_int_custom_property("rows_read") == 10
    assert artifact.get_float_custom_property("rejected_fraction") == 0.25
    assert artifact.get_string_custom_property("source") == "table"
    assert artifact.get_json_value_custom_property("rejected_by_reason") == {"not_a_number": 2}
