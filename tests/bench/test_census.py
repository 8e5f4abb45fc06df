"""bench/census.py without running a pipeline: its arms (architecture × numeric encoding), the
sizes the command line gives it, and the report it renders from finished runs.

The whole pipeline (both encodings) runs in tests/bench/test_bench_smoke.py's slow census test.
"""

from __future__ import annotations

import argparse
import json

from bench import census, cli
from bench.report import machine_info, write_report
from watchnext.core.config import load_config
from watchnext.pipeline.cache_keys import trainer_view, transform_view

import numpy as np
import pytest


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="watchnext")
    cli.add_arguments(parser.add_subparsers(dest="command").add_parser("bench"))
    return parser.parse_args(["bench", *argv])


def test_full_compares_numeric_encodings_and_the_command_line_narrows_groups_and_architectures():
    full = census.SIZES["full"]
    assert (full.seeds, full.groups, full.architectures) == (5, (1, 2), ("mmoe", "shared_bottom"))
    assert full.numeric_encodings == ("none", "piecewise_linear")

    args = _parse("census", "--full", "--groups", "1", "--architectures", "mmoe")
    sizes = cli.sizes_for(census, args.size, args)
    assert (sizes.groups, sizes.architectures) == ((1,), ("mmoe",))
    assert sizes.numeric_encodings == full.numeric_encodings
    assert (sizes.seeds, sizes.steps) == (full.seeds, full.steps)
    args = _parse("census", "--quick", "--numeric-encodings", "none, buckets", "--groups", "1,2")
    sizes = cli.sizes_for(census, args.size, args)
    assert (sizes.numeric_encodings, sizes.groups) == (("none", "buckets"), (1, 2))

    with pytest.raises(SystemExit, match="--groups 'one': a comma-separated list of int"):
        cli.sizes_for(census, "full", _parse("census", "--groups", "one"))
    with pytest.raises(SystemExit, match="--architectures: an empty list"):
        cli.sizes_for(census, "full", _parse("census", "--architectures", ","))
    from bench import oracle

    with pytest.raises(SystemExit, match="--groups does not apply"):
        cli.sizes_for(oracle, "quick", _parse("oracle", "--groups", "1"))


def test_an_unknown_group_or_encoding_is_refused_before_any_run():
    with pytest.raises(ValueError, match=r"groups \(3,\)"):
        census.check_sizes(census.Sizes(seeds=1, steps=1, groups=(3,)))
    with pytest.raises(ValueError, match=r"numeric_encodings \('none', 'splines'\)"):
        census.check_sizes(census.Sizes(seeds=1, steps=1, numeric_encodings=("none", "splines")))
    census.check_sizes(census.SIZES["full"])


def test_a_numeric_encoding_arm_embeds_every_numeric_feature_and_only_changes_transform_on():
    base = load_config(str(census.CONFIG_FILE))
    sizes = census.SIZES["full"]
    plain = census.run_config(base, 1, "mmoe", 3, sizes, "/out")
    assert plain.features == base.features and not plain.features.numeric_embeddings
    ple = census.run_config(base, 1, "mmoe", 3, sizes, "/out", "piecewise_linear")
    embedded = ple.features.numeric_embeddings
    assert [e.name for e in embedded] == list(base.features.numeric)
    assert {(e.encoding, e.buckets, e.embedding_dim, e.keep_value) for e in embedded} == {
        ("piecewise_linear", 16, 4, True)}
    assert (ple.training.seed, ple.model.architecture, ple.training.warm_start) == (3, "mmoe", False)
    # Same rows (ExampleGen's table settings), another Transform and another Trainer.
    assert ple.data == plain.data
    assert transform_view(ple) != transform_view(plain)
    assert trainer_view(ple).to_json() != trainer_view(plain).to_json()
    # Group 2's heads and an encoding combine.
    college = census.run_config(base, 2, "shared_bottom", 0, sizes, "/out", "buckets")
    assert college.head_names[0] == census.COLLEGE_HEAD
    assert {e.encoding for e in college.features.numeric_embeddings} == {"buckets"}
    assert census.arm("mmoe", "none") == "mmoe"
    assert census.arm("mmoe", "piecewise_linear") == "mmoe + piecewise_linear numeric"


def _finished(encoding: str, seed: int, income: float) -> dict:
    return {"group": 1, "architecture": "mmoe", "numeric_encoding": encoding, "seed": seed,
            "test_auc": {"income": income, "never_married": 0.9938 + seed / 10000},
            "pipeline_seconds": 100.0, "component_seconds": {"Transform": 0.0, "Trainer": 90.0},
            "model": f"/m/{encoding}/{seed}"}


def test_the_report_has_a_row_per_arm_beside_gbdt_and_the_references(tmp_path):
    sizes = census.Sizes(seeds=2, steps=1000, groups=(1,), architectures=("mmoe",),
                         numeric_encodings=("none", "piecewise_linear"))
    runs = [_finished("none", 0, 0.9410), _finished("none", 1, 0.9420),
            _finished("piecewise_linear", 0, 0.9430), _finished("piecewise_linear", 1, 0.9440)]
    rng = np.random.default_rng(0)
    labels = {1: {"income": (rng.random(2000) < 0.06).astype(np.int64),
                  "never_married": (rng.random(2000) < 0.4).astype(np.int64)}}
    gbdt = [{"group": 1, "seed": s, "test_auc": {"income": 0.9466, "never_married": 0.9940}} for s in (0, 1)]
    base = load_config(str(census.CONFIG_FILE))
    result = census._result(sizes, "/d/census.gz", base, runs, labels, gbdt)

    summary = result.figures["summary"]["group1"]
    assert set(summary) == {"mmoe", "mmoe + piecewise_linear numeric"}
    assert summary["mmoe"]["income"]["mean"] == pytest.approx(0.9415)
    assert summary["mmoe + piecewise_linear numeric"]["income"]["mean"] == pytest.approx(0.9435)
    group1, timing = result.tables
    names = [row[0] for row in group1.rows]
    assert names[:3] == ["watchnext mmoe", "watchnext mmoe + piecewise_linear numeric",
                         "sklearn HistGradientBoosting, same rows (2 seed(s))"]
    assert any(n.startswith("paper mmoe") for n in names) and any(n.startswith("DeepCTR mmoe") for n in names)
    assert group1.rows[1][1].startswith("0.9435 ±")
    assert timing.columns[2] == "numeric encoding"
    assert [row[2] for row in timing.rows] == ["none", "none", "piecewise_linear", "piecewise_linear"]
    assert any("piecewise_linear" in n and "16 quantile bins" in n for n in result.notes)

    paths = write_report(result, str(tmp_path), machine_info(), 1.0)  # the plot draws one column per arm
    assert set(paths) == {"json", "md", "plot:auc"}
    assert "| watchnext mmoe + piecewise_linear numeric | 0.9435 ±" in (tmp_path / "census.md").read_text()


def test_an_interrupted_run_resumes_per_arm(tmp_path):
    sizes = census.SIZES["full"]
    path = tmp_path / census.RUNS_FILE
    path.write_text(json.dumps({"sizes": json.loads(json.dumps(census.dataclasses.asdict(sizes))),
                                "data": "/d", "runs": [_finished("piecewise_linear", 0, 0.94)]}))
    assert set(census.finished_runs(str(path), sizes, "/d")) == {(1, "piecewise_linear", "mmoe", 0)}
    assert census.finished_runs(str(path), census.SIZES["quick"], "/d") == {}  # other sizes: start over
