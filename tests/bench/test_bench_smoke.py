"""The benchmark framework runs a benchmark end to end and writes its JSON, Markdown and plot.

No timing is asserted: the figures are the benchmark's output, not a test condition.
"""

from __future__ import annotations

import json
import math
import os

from bench.cli import run_benchmark
from bench.report import BenchmarkResult, Plot, Table, jsonable, machine_info, write_report

import pytest


def test_oracle_smoke_writes_json_markdown_and_plot(tmp_path):
    out = tmp_path / "reports"
    paths = run_benchmark("oracle", "smoke", str(out), str(tmp_path / "work"))

    document = json.loads((out / "oracle.json").read_text())
    assert {"benchmark", "date", "wall_seconds", "machine", "parameters", "figures", "notes", "plots"} <= set(
        document)
    machine = document["machine"]
    assert {"cpu_model", "nproc", "load_average", "load_average_after", "versions", "date"} <= set(machine)
    assert machine["versions"]["tensorflow"] and len(machine["load_average"]) == 3
    assert document["parameters"]["size"] == "smoke"
    figures = document["figures"]
    assert set(figures["oracle_auc"]) == {"click", "like", "dismiss"}
    (run,) = figures["runs"]
    assert run["architecture"] == "mmoe" and set(run["auc"]) == {"click", "like", "dismiss"}
    assert all(0.0 <= run["auc"][h] <= 1.0 for h in run["auc"])
    share = figures["summary"]["mmoe"]["click"]["oracle_share"]
    expected = (run["auc"]["click"] - 0.5) / (figures["oracle_auc"]["click"] - 0.5)
    assert math.isclose(share["mean"], expected, rel_tol=1e-9) and share["sd"] is None  # one seed
    # steps 0 (the smoke size): trained as the Trainer trains, stopping on one half of the eval
    # requests; the AUCs (the oracle's too) are of the other half only.
    assert 0 < run["best_step"] <= run["steps"]
    assert 0 < figures["scored_impressions"] < figures["counts"]["eval_examples"]

    markdown = (out / "oracle.md").read_text()
    assert "| mmoe |" in markdown and "oracle_share.png" in markdown and "load average" in markdown
    png = (out / "oracle_share.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(paths) == {"json", "md", "plot:share"}


def test_report_is_strict_json_with_the_machine(tmp_path):
    result = BenchmarkResult(
        name="demo", title="Demo", parameters={"n": 3},
        figures={"nan": float("nan"), "values": [1.0, float("inf")]},
        tables=[Table("t", ["a", "b"], [[1, 2]])],
        plots=[Plot("line", "a line", lambda fig: fig.subplots().plot([0, 1], [1, 0]))],
        notes=["a note"])
    paths = write_report(result, str(tmp_path), machine_info(), 1.0)
    document = json.loads((tmp_path / "demo.json").read_text())  # NaN/inf written as null
    assert document["figures"] == {"nan": None, "values": [1.0, None]}
    assert "| 1 | 2 |" in (tmp_path / "demo.md").read_text()
    assert sorted(paths) == ["json", "md", "plot:line"]
    assert jsonable({"x": (1, 2)}) == {"x": [1, 2]}


def test_bench_flags_parse_as_a_watchnext_subcommand():
    import argparse

    from bench import cli, oracle

    parser = argparse.ArgumentParser(prog="watchnext")
    cli.add_arguments(parser.add_subparsers(dest="command").add_parser("bench"))
    args = parser.parse_args(["bench", "oracle", "--quick", "--seeds", "2", "--out", "r"])
    assert (args.name, args.size, args.seeds, args.out, args.work_dir) == ("oracle", "quick", 2, "r", None)
    default = parser.parse_args(["bench", "all"])
    assert (default.size, default.out) == ("quick", None)  # run() writes to cli.DEFAULT_OUT
    assert not cli.DEFAULT_OUT.startswith("reports")
    assert parser.parse_args(["bench", "oracle", "--publish"]).out == cli.PUBLISHED_OUT == "reports"
    sizes = cli.sizes_for(oracle, args.size, args)
    assert sizes.seeds == 2 and sizes.impressions == oracle.SIZES["quick"].impressions


def test_pipeline_scale_is_registered_and_its_sizes_parse():
    """Its smoke size still runs the whole TFX pipeline in a child process (about 7 minutes on this
    machine under load), so it is not run here; tests/bench/test_pipeline_scale.py covers its
    measurement (RSS sampler, phases, slopes, report) on stand-ins."""
    import argparse

    from bench import cli, pipeline_scale

    import pytest

    assert cli.BENCHMARKS["pipeline_scale"] == pipeline_scale.__name__
    parser = argparse.ArgumentParser(prog="watchnext")
    cli.add_arguments(parser.add_subparsers(dest="command").add_parser("bench"))
    args = parser.parse_args(["bench", "pipeline_scale", "--smoke", "--steps", "2"])
    sizes = cli.sizes_for(pipeline_scale, args.size, args)
    assert sizes.steps == 2 and sizes.impression_sizes == pipeline_scale.SIZES["smoke"].impression_sizes
    listed = parser.parse_args(["bench", "pipeline_scale", "--full", "--impression-sizes", "1000000,10000000",
                                "--beam-preset", "direct-multiprocess"])
    sizes = cli.sizes_for(pipeline_scale, listed.size, listed)
    assert sizes.impression_sizes == (1_000_000, 10_000_000) and sizes.beam_preset == "direct-multiprocess"
    assert sizes.max_rss_gb == pipeline_scale.SIZES["full"].max_rss_gb  # the rest stays the size's
    with pytest.raises(SystemExit, match="--impression-sizes '1e6': a comma-separated list of int"):
        cli.sizes_for(pipeline_scale, "full", parser.parse_args(["bench", "pipeline_scale",
                                                                 "--impression-sizes", "1e6"]))
    # One impressions figure cannot override a list of sizes: refused, naming the fields.
    one_size = parser.parse_args(["bench", "pipeline_scale", "--impressions", "5"])
    with pytest.raises(SystemExit, match="--impressions does not apply"):
        cli.sizes_for(pipeline_scale, "quick", one_size)


def test_census_names_missing_data_and_takes_a_data_flag(tmp_path):
    import argparse

    from bench import census, cli, common

    parser = argparse.ArgumentParser(prog="watchnext")
    cli.add_arguments(parser.add_subparsers(dest="command").add_parser("bench"))
    args = parser.parse_args(["bench", "census", "--quick", "--data", "/d/census.gz", "--seeds", "2"])
    assert (args.name, args.data) == ("census", "/d/census.gz")
    assert cli.sizes_for(census, args.size, args).seeds == 2
    missing = common.Context(str(tmp_path), data_path=str(tmp_path / "absent.gz"))
    with pytest.raises(FileNotFoundError, match=r"absent\.gz.*--data PATH"):
        census.data_file(missing, census.SIZES["smoke"])
    with pytest.raises(FileNotFoundError, match=r"no data given: pass `python -m bench census --data PATH`"):
        census.data_file(common.Context(str(tmp_path)), census.SIZES["smoke"])  # no developer-only default


def test_bench_without_its_data_ends_in_one_line_and_status_2(tmp_path, capsys):
    from bench import cli

    assert cli.main(["census", "--smoke", "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "python -m bench census: census: no data given: pass `python -m bench census --data PATH` "
        "with the UCI Census-Income (KDD) file census-income.test.gz (42 columns, no header)")
    assert not (tmp_path / "out").exists()  # nothing written


def _write_split(directory, rows: list[dict]) -> None:
    import tensorflow as tf

    os.makedirs(directory)
    with tf.io.TFRecordWriter(os.path.join(directory, "data.gz"), options="GZIP") as writer:
        for row in rows:
            example = tf.train.Example()
            example.features.feature["job"].bytes_list.value.append(row["job"].encode())
            example.features.feature["age"].float_list.value.append(row["age"])
            example.features.feature["rich"].int64_list.value.append(row["rich"])
            writer.write(example.SerializeToString())


def test_census_gbdt_trains_on_the_train_split_and_scores_the_test_split(tmp_path):
    """The GBDT row reads the ExampleGen's raw splits: ids as categorical codes fitted on train
    (a value train never saw is missing), numeric columns raw, labels per head."""
    from bench import census
    from watchnext.core.config import from_dict

    import numpy as np

    config = from_dict({
        "data": {"source": "table"},
        "features": {"ids": [{"name": "job", "vocabulary": "job", "embedding_dim": 2}], "numeric": ["age"],
                     "log1p_numeric": [], "position": "", "device": "", "request_id": ""},
        "heads": [{"name": "rich", "type": "binary", "label": "rich"}],
        "model": {"position_mode": "none"}})
    rng = np.random.default_rng(0)

    def rows(n: int, jobs: list[str]) -> list[dict]:
        out = []
        for _ in range(n):
            job, age = str(rng.choice(jobs)), float(rng.integers(18, 80))
            rich = int((age > 45) ^ (job == "pilot") ^ (rng.random() < 0.1))  # 10% label noise
            out.append({"job": job, "age": age, "rich": rich})
        return out

    _write_split(tmp_path / "Split-train", rows(1500, ["clerk", "nurse", "pilot"]))
    _write_split(tmp_path / "Split-test", rows(400, ["clerk", "nurse", "pilot", "astronaut"]))
    train, labels = census.table_split(str(tmp_path), "train", config)
    test, _ = census.table_split(str(tmp_path), "test", config)
    assert len(labels["rich"]) == 1500 and set(train) == {"job", "age"}
    x_train, x_test, categorical = census.gbdt_matrix(train, test, config)
    assert categorical == [True, False] and x_train.shape == (1500, 2) and x_test.shape == (400, 2)
    assert set(np.unique(x_train[:, 0])) == {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(np.isnan(x_test[:, 0]), test["job"] == b"astronaut")  # unseen → missing
    np.testing.assert_array_equal(x_test[:, 1], test["age"])

    (run,) = census.gbdt_test_auc(str(tmp_path), config, seeds=1)
    assert (run["train_examples"], run["test_examples"]) == (1500, 400)
    # The interaction (job == pilot flips the age rule) is learnable: well above chance, below
    # the 10% label noise's ceiling.
    assert 0.8 < run["test_auc"]["rich"] <= 0.95 and run["iterations"]["rich"] >= 1


@pytest.mark.slow
def test_census_smoke_runs_the_whole_pipeline_on_a_synthetic_table(tmp_path):
    """TableExampleGen … Trainer … AtomicPusher on 600 census-format rows made up here (no shared
    data needed); the held-out test split is scored through the exported serving signature."""
    import argparse

    from bench import census, cli

    data = census.synthetic_census(str(tmp_path / "census-income.test.gz"), rows=600, seed=1)
    args = argparse.Namespace(data=data, **dict.fromkeys(cli.OVERRIDES))
    out = tmp_path / "reports"
    paths = run_benchmark("census", "smoke", str(out), str(tmp_path / "work"), args)

    document = json.loads((out / "census.json").read_text())
    # Both arms: the config as written, and every numeric feature piecewise-linear encoded by
    # Transform's quantiles (its own Transform run; ExampleGen's rows are shared).
    plain, ple = document["figures"]["runs"]
    assert [(r["group"], r["architecture"], r["numeric_encoding"], r["seed"]) for r in (plain, ple)] == [
        (1, "mmoe", "none", 0), (1, "mmoe", "piecewise_linear", 0)]
    for run in (plain, ple):
        assert set(run["test_auc"]) == {"income", "never_married"}
        assert all(0.0 <= v <= 1.0 for v in run["test_auc"].values())
        assert os.path.isdir(run["model"]) and run["component_seconds"]["Trainer"] > 0
    assert plain["model"] != ple["model"] and ple["component_seconds"]["Transform"] > 0
    sample = document["figures"]["test_sample"]["group1"]
    assert 90 < sample["income"]["examples"] < 220  # ~25% of 600 rows, by the seeded hash
    assert 0 < sample["never_married"]["positives"] < sample["never_married"]["examples"]
    markdown = (out / "census.md").read_text()
    assert "| watchnext mmoe |" in markdown and "| paper mmoe" in markdown and "census_auc.png" in markdown
    assert "| watchnext mmoe + piecewise_linear numeric |" in markdown
    assert (out / "census_auc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (trees,) = document["figures"]["gbdt_runs"]  # the GBDT row on the same rows, one seed
    assert trees["test_examples"] == sample["income"]["examples"]
    assert set(trees["test_auc"]) == {"income", "never_married"}
    assert "sklearn HistGradientBoosting" in markdown
    assert set(paths) == {"json", "md", "plot:auc"}


def test_multi_worker_is_registered_and_its_sizes_parse():
    """It launches a loopback cluster of Trainer processes (minutes on 2 cores), so it is not run
    here; tests/models/test_multi_worker.py runs the same launcher and checks what it trains."""
    import argparse

    from bench import cli, multi_worker

    assert cli.BENCHMARKS["multi_worker"] == multi_worker.__name__
    parser = argparse.ArgumentParser(prog="watchnext")
    cli.add_arguments(parser.add_subparsers(dest="command").add_parser("bench"))
    args = parser.parse_args(["bench", "multi_worker", "--quick", "--steps", "20", "--batch-size", "64"])
    sizes = cli.sizes_for(multi_worker, args.size, args)
    assert (sizes.steps, sizes.batch_size) == (20, 64)
    assert sizes.impressions == multi_worker.SIZES["quick"].impressions
    assert [processes for _, processes, _ in multi_worker.ARMS] == [1, 2]
