"""The `online` benchmark's summaries: relative changes over seeds, verdicts that state the
ordering plainly, and the tables beside the paper's numbers (on made-up reports)."""

from __future__ import annotations

from bench.online_tables import (
    ENGAGEMENT,
    SATISFACTION,
    relative_changes,
    table2,
    table3,
    verdicts,
)


def _report(values: dict[str, float], control: str, significant: bool = True) -> dict:
    arms = {a: {"metrics": {m: {"value": v} for m in (ENGAGEMENT, SATISFACTION)}} for a, v in values.items()}
    differences = {a: {m: {"relative": v / values[control] - 1, "delta": v - values[control],
                           "significant": significant} for m in (ENGAGEMENT, SATISFACTION)}
                   for a, v in values.items() if a != control}
    return {"arms": arms, "differences": differences, "control": control}


ARMS2 = {"shared_bottom_4": 100.0, "mmoe_4": 102.0, "shared_bottom_8": 101.0, "mmoe_8": 99.0, "logging": 90.0}


def test_relative_changes_average_seeds_and_count_significant_gains():
    reports = [_report(ARMS2, "shared_bottom_4"), _report({**ARMS2, "mmoe_4": 104.0}, "shared_bottom_4",
                                                          significant=False)]
    stat = relative_changes(reports, "mmoe_4", ENGAGEMENT)
    assert abs(stat["mean"] - 0.03) < 1e-12 and stat["n"] == 2
    assert stat["significant_gains"] == 1


def test_verdicts_say_where_the_ordering_agrees_and_where_not():
    reports = [_report(ARMS2, "shared_bottom_4")]
    lines = verdicts(reports, [("mmoe_4", "shared_bottom_4"), ("mmoe_8", "shared_bottom_8")], [ENGAGEMENT])
    assert "the ordering agrees" in lines[0]
    assert "does NOT agree" in lines[1]


def test_tables_sit_beside_the_papers_numbers():
    t2 = {"reports": [_report(ARMS2, "shared_bottom_4")],
          "multiplications": {a: 1000 for a in ARMS2}, "widths": {a: [32] for a in ARMS2}}
    table = table2(t2, "shared_bottom_4")
    rows = {r[0]: r for r in table.rows if r[0] != "verdict"}
    assert rows["mmoe_8"][4] == "+0.45%" and rows["mmoe_8"][6] == "+3.07%"
    assert rows["mmoe_4"][3].startswith("+2.00%") and rows["shared_bottom_4"][3] == "baseline"
    assert sum(r[0] == "verdict" for r in table.rows) == 6
    t3 = {"reports": [_report({"none": 10.0, "input_feature": 9.9, "shallow_tower": 10.2, "logging": 9.0},
                              "none")]}
    rows3 = {r[0]: r for r in table3(t3, "none").rows}
    assert rows3["shallow_tower"][2] == "+0.24%" and rows3["input_feature"][2] == "-0.07%"
    assert rows3["shallow_tower"][1].startswith("+2.00%")
