"""The pipeline_scale benchmark's measurement: RSS sampling of a process tree, phases, slopes, the report.

The benchmark itself runs the whole TFX pipeline once per size in a child process (about 7
minutes at its smoke size on this 2-core machine under load), too long for the smoke test;
these tests drive every piece of its measurement and reporting on small stand-ins instead.
No timing is asserted.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

from bench import common
from bench import pipeline_scale as ps
from bench.report import machine_info, write_report

import pytest

MB = 1024 * 1024


def test_growth_exponents_are_log_log_slopes():
    sizes = [10_000, 100_000, 1_000_000]
    growth = ps.growth_exponents(sizes, [3.0 * n**0.5 for n in sizes])
    assert growth["pairwise"] == pytest.approx([0.5, 0.5])
    assert growth["fit"] == pytest.approx(0.5)
    flat = ps.growth_exponents(sizes, [4.0, 4.0, 4.0])
    assert flat["pairwise"] == pytest.approx([0.0, 0.0]) and flat["fit"] == pytest.approx(0.0)
    # A missing value breaks only the pairs it is in; the fit uses the rest.
    gap = ps.growth_exponents(sizes, [1.0, None, 100.0])
    assert gap["pairwise"] == [None, None] and gap["fit"] == pytest.approx(1.0)
    assert ps.growth_exponents([1000], [5.0]) == {"pairwise": [], "fit": None}
    with pytest.raises(ValueError, match="2 sizes but 1 values"):
        ps.growth_exponents([1, 2], [1.0])


def test_marginal_rates_remove_the_fixed_cost():
    # 10 s fixed + 1 ms per row: plain rows/s grows with size, the marginal rate is 1000 rows/s.
    rows = [1_000, 10_000, 100_000]
    seconds = [10.0 + r / 1000 for r in rows]
    assert ps.marginal_rates(rows, seconds) == pytest.approx([None, 1000.0, 1000.0])
    assert ps.marginal_rates([1, 2], [5.0, 4.0]) == [None, None]  # faster with more rows: no rate
    assert ps.marginal_rates([1, 2], [None, 4.0]) == [None, None]


def test_phase_peaks_take_the_largest_sample_inside_each_phase():
    samples = [(0.0, 100, 1), (1.0, 300, 1), (1.5, 200, 2), (2.0, 50, 1), (3.5, 70, 1)]
    peaks = ps.phase_peaks(samples, [("a", 0.0, 2.0), ("b", 2.0, 3.0), ("short", 3.1, 3.2)])
    assert peaks["a"] == {"peak_rss_bytes": 300, "samples": 3}
    assert peaks["b"] == {"peak_rss_bytes": 50, "samples": 1}  # start inclusive, end exclusive
    assert peaks["short"] == {"peak_rss_bytes": None, "samples": 0}  # no sample: no invented peak


def test_downsample_keeps_the_peak():
    points = [(float(i), float(i % 97)) for i in range(10_000)]
    points[5_003] = (5003.0, 1e6)
    kept = ps.downsample(points, limit=100)
    assert len(kept) <= 101 and max(v for _, v in kept) == 1e6
    assert ps.downsample(points[:10], limit=100) == points[:10]


def test_rss_sampler_counts_the_descendants_of_the_process():
    # The sampled process only waits; its child holds ~150 MB: the sampler must see that memory.
    grandchild = "b = b'x' * (150 * 2**20); import time; time.sleep(3)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    child = subprocess.Popen([sys.executable, "-c", parent])
    with ps.RssSampler(child.pid, interval=0.05) as sampler:
        assert child.wait(timeout=60) == 0
    assert sampler.samples, "no sample taken"
    peak = max(rss for _, rss, _ in sampler.samples)
    assert peak >= 150 * MB
    assert max(n for _, _, n in sampler.samples) == 2
    assert ps.tree_rss(child.pid) == (0, 0)  # gone: nothing to count


def _timeline(t0: float, impressions: int, example_gen_seconds: float) -> dict:
    """A child's timeline: simulate 2 s, two components, as child_main writes it."""
    return {
        "impressions": impressions,
        "simulate": {"start": t0 + 10, "end": t0 + 12, "impressions": impressions, "events": impressions // 3,
                     "bytes": 2 * MB},
        "run": {"start": t0 + 12, "end": t0 + 18 + example_gen_seconds, "seconds": example_gen_seconds + 6,
                "pushed": True, "blessed": True, "message": "pushed /x"},
        "components": [{"name": "LogExampleGen", "start": t0 + 12.5, "end": t0 + 12.5 + example_gen_seconds},
                       {"name": "Trainer", "start": t0 + 13 + example_gen_seconds,
                        "end": t0 + 18 + example_gen_seconds}],
        "example_gen": "LogExampleGen",
        "ingestion": {"impressions": {"read": impressions}, "events": {"read": impressions // 3},
                      "examples": {"train": impressions * 4 // 5, "eval": impressions // 5}},
        "artifact_bytes": 10 * MB,
        "model": {"training": {"train_examples": impressions * 4 // 5, "batch_size": 1024, "steps": 40,
                               "best_step": 24, "epochs": 40 * 1024 / (impressions * 4 // 5),
                               "stop_reason": "early stopping"},
                  "heads": {"click": {"auc": 0.61234, "n": impressions // 5},
                            "rating": {"mse": 0.5, "n": impressions // 5}}},
    }


def _samples(t0: float, end: float, base_mb: float) -> list[tuple[float, int, int]]:
    """One sample every 0.25 s; memory rises by 1 MB per second."""
    n = int((end - t0) / 0.25)
    return [(t0 + i * 0.25, int((base_mb + i * 0.25) * MB), 1) for i in range(n)]


def test_summarize_size_splits_time_and_memory_by_phase():
    t0 = 1000.0
    timeline = _timeline(t0, 10_000, example_gen_seconds=4.0)
    samples = _samples(t0, t0 + 25, base_mb=500)
    r = ps.summarize_size(timeline, samples, launch=t0, exit_time=t0 + 24)
    assert r["finished"] and r["component_order"] == ["LogExampleGen", "Trainer"]
    s = r["seconds"]
    assert s[ps.STARTUP] == pytest.approx(10) and s[ps.SIMULATE] == pytest.approx(2)
    assert s["LogExampleGen"] == pytest.approx(4) and s["Trainer"] == pytest.approx(5)
    assert s[ps.ORCHESTRATION] == pytest.approx(10 - 9)  # run 10 s, components 9 s
    assert s[ps.FINISH] == pytest.approx(24 - 22)
    # Memory rises 1 MB/s from 500 MB: a phase's peak is its last sample.
    assert r["peak_rss_mb"]["LogExampleGen"] == pytest.approx(500 + 16.25)
    assert r["peak_rss_mb"]["Trainer"] == pytest.approx(500 + 21.75)
    assert r["peak_rss_mb_overall"] == pytest.approx(500 + 24.75)
    assert r["simulator"]["impressions_per_second"] == pytest.approx(10_000 / 2)
    assert r["ingestion"]["impressions_per_second"] == pytest.approx(10_000 / 4)
    assert r["ingestion"]["events_per_second"] == pytest.approx(3333 / 4)


def test_summarize_unfinished_names_where_the_run_stopped(tmp_path):
    t0 = 0.0
    events = [{"event": "start", "phase": ps.SIMULATE, "time": 5.0},
              {"event": "end", "phase": ps.SIMULATE, "time": 9.0, "impressions": 10**6, "events": 340_000},
              {"event": "start", "phase": ps.EXAMPLE_GEN, "time": 10.0},
              {"event": "end", "phase": ps.EXAMPLE_GEN, "time": 30.0},
              {"event": "start", "phase": "Transform", "time": 31.0}]
    # What LogExampleGen left on disk before the stop: <output>/tfx/<id>/<output key>/<execution>/counts.json.
    rejected = tmp_path / "tfx" / ps.EXAMPLE_GEN / "rejected" / "1"
    rejected.mkdir(parents=True)
    (rejected / "counts.json").write_text(json.dumps({"impressions": {"read": 1_000_000},
                                                      "events": {"read": 340_000},
                                                      "examples": {"train": 800_000, "eval": 200_000}}))
    r = ps.summarize_unfinished(1_000_000, events, _samples(t0, 100, 800), launch=t0, exit_time=100.0,
                                reason="stopped", output_dir=str(tmp_path))
    assert not r["finished"] and r["running"] == "Transform" and r["running_seconds"] == pytest.approx(69)
    assert r["seconds"] == pytest.approx({ps.STARTUP: 5, ps.SIMULATE: 4, ps.EXAMPLE_GEN: 20})
    assert r["peak_rss_mb"][ps.EXAMPLE_GEN] == pytest.approx(800 + 29.75)
    assert r["running_peak_rss_mb"] == pytest.approx(800 + 99.75)
    assert r["simulator"]["events_per_second"] == pytest.approx(340_000 / 4)
    assert r["ingestion"]["impressions_per_second"] == pytest.approx(1_000_000 / 20)
    assert r["ingestion"]["examples"]["eval"] == 200_000
    assert r["phase_windows"][-1] == ("Transform", 31.0, 100.0)


def test_report_from_stand_in_runs(tmp_path, monkeypatch):
    """run() → tables, slopes, marginal rates, a stopped size and the plots, without any pipeline."""
    example_gen_seconds = {1_000: 11.0, 10_000: 20.0, 100_000: 110.0, 1_000_000: 1010.0}

    def fake_measure(work_dir, impressions, sizes):
        t0 = 0.0
        timeline = _timeline(t0, impressions, example_gen_seconds[impressions])
        if impressions == 1_000_000:  # stopped in the Trainer, after LogExampleGen finished
            c = timeline["components"]
            events = [{"event": "start", "phase": ps.SIMULATE, "time": 10.0},
                      {"event": "end", "phase": ps.SIMULATE, "time": 12.0},
                      {"event": "start", "phase": ps.EXAMPLE_GEN, "time": c[0]["start"]},
                      {"event": "end", "phase": ps.EXAMPLE_GEN, "time": c[0]["end"]},
                      {"event": "start", "phase": "Trainer", "time": c[1]["start"]}]
            counts = tmp_path / "stopped" / "tfx" / ps.EXAMPLE_GEN / "rejected" / "7"
            counts.mkdir(parents=True, exist_ok=True)
            (counts / "counts.json").write_text(json.dumps(timeline["ingestion"]))
            end = c[1]["start"] + 2
            return ps.summarize_unfinished(impressions, events, _samples(t0, end, 900), t0, end,
                                           "stopped after the limit", str(tmp_path / "stopped"))
        end = timeline["run"]["end"] + 1
        return ps.summarize_size(timeline, _samples(t0, end, 400 + impressions / 1000), t0, end)

    monkeypatch.setattr(ps, "measure_size", fake_measure)
    sizes = ps.Sizes(impression_sizes=(1_000_000, 10_000, 1_000, 100_000), steps=3)
    result = ps.run(common.Context(str(tmp_path / "work")), sizes)
    paths = write_report(result, str(tmp_path), machine_info(), 1.0)

    document = json.loads((tmp_path / "pipeline_scale.json").read_text())
    figures = document["figures"]
    assert figures["impressions"] == [1_000, 10_000, 100_000, 1_000_000]  # sorted
    assert [r["finished"] for r in figures["runs"]] == [True, True, True, False]
    # 10 s fixed + 1 ms per row: the marginal rate is 1000 rows/s, the stopped size's included.
    assert figures["marginal_impressions_per_second"]["ingestion"][1:] == pytest.approx([1000.0] * 3)
    slopes = figures["growth_exponents"][ps.EXAMPLE_GEN]["pairwise"]
    assert slopes[1] == pytest.approx(math.log(110 / 20) / math.log(10))
    assert slopes[2] == pytest.approx(math.log(1010 / 110) / math.log(10))
    trainer = figures["growth_exponents"]["Trainer"]
    assert trainer["pairwise"][:2] == pytest.approx([0.0, 0.0]) and trainer["pairwise"][2] is None
    assert trainer["fit"] == pytest.approx(0.0)
    assert figures["growth_exponents"]["pipeline total"]["pairwise"][2] is None  # no total when stopped

    markdown = (tmp_path / "pipeline_scale.md").read_text()
    assert "| LogExampleGen | 11.0 | 20.0 | 110.0 | 1,010.0 |" in markdown
    assert "| 1M (stopped) s |" in markdown and "> 2 (stopped)" in markdown and "(so far)" in markdown
    assert "train_steps is fixed at 3" in markdown and "| 80,000 / 20,000 |" in markdown
    assert "stopped after the limit, in Trainer" in markdown and "load average" in markdown
    # The model each finished size trained, from its training.json and metrics.json.
    assert "| 10,000 | 8,000 | 1,024 | 40 | 5.12 | 24 | early stopping | AUC 0.6123 | MSE 0.5 |" in markdown
    assert "| 1,000,000 | 800,000 |" not in markdown  # the stopped size trained nothing
    for name in ("scaling", "timeline"):
        assert (tmp_path / f"pipeline_scale_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(paths) == {"json", "md", "plot:scaling", "plot:timeline"}


def test_component_windows_come_from_the_runners_progress_events(monkeypatch):
    """The hook the child uses: the runner's public progress callback, fed by LocalDagRunner's
    announcements (pipeline/tfx_logging.py), turned into one window per finished component."""
    from watchnext.pipeline import tfx_logging

    from tfx.orchestration.local import local_dag_runner

    class Absl:
        def info(self, *args, **kwargs):
            pass

    monkeypatch.setattr(local_dag_runner, "logging", Absl())
    events = []
    with tfx_logging.tfx_run_logging(3, [events.append]):
        # The two lines LocalDagRunner logs around each component (tfx/orchestration/local).
        for name in ("LogExampleGen", "Trainer"):
            local_dag_runner.logging.info(tfx_logging.RUNNING_MESSAGE, name)
            local_dag_runner.logging.info(tfx_logging.FINISHED_MESSAGE, name)
        local_dag_runner.logging.info(tfx_logging.RUNNING_MESSAGE, "Evaluator")  # never finished
    windows = ps.component_windows(events)
    assert [w["name"] for w in windows] == ["LogExampleGen", "Trainer"]
    assert all(w["end"] >= w["start"] for w in windows) and windows[1]["start"] >= windows[0]["end"]
    assert windows[1]["end"] - windows[1]["start"] == pytest.approx(events[3].seconds)


def test_child_config_is_the_default_model_with_fixed_steps(tmp_path):
    from watchnext.core.config import Config

    sizes = ps.SIZES["quick"]
    config = ps.child_config(str(tmp_path), 100_000, sizes)
    assert config.model == Config().model
    assert config.training.train_steps == sizes.steps
    assert config.data.simulate_impressions_per_day == 100_000
    assert all(h.value_threshold == 0.0 for h in config.heads)


def test_child_config_with_zero_steps_trains_on_the_pipelines_own_epoch_budget(tmp_path):
    from watchnext.core.config import Config

    config = ps.child_config(str(tmp_path), 1_000_000, ps.Sizes(impression_sizes=(1_000_000,), steps=0,
                                                                batch_size=0))
    assert config.training.train_steps == 0  # the budget comes from training.epochs
    assert config.training.epochs == Config().training.epochs
    assert config.training.batch_size == Config().training.batch_size


def test_example_gen_id_is_the_pipelines():
    from watchnext.components.log_example_gen import make_log_example_gen

    assert make_log_example_gen("/logs", eval_percent=20, max_rejected_fraction=0.01).id == ps.EXAMPLE_GEN


def test_full_size_is_the_published_100k_1m_10m_trained_on_the_pipelines_budget():
    full = ps.SIZES["full"]
    assert full.impression_sizes == (100_000, 1_000_000, 10_000_000)
    assert (full.steps, full.batch_size) == (0, 0)
    assert full.max_rss_gb is not None and full.max_seconds_per_size is not None


def test_limit_reason_stops_a_size_over_its_time_or_memory_limit():
    sizes = ps.Sizes(impression_sizes=(1,), steps=0, max_seconds_per_size=100.0, max_rss_gb=2.0)
    assert ps.limit_reason(50.0, int(1.5 * ps.GB), sizes) is None
    assert ps.limit_reason(50.0, None, sizes) is None  # no sample yet
    assert "limit of 100 s" in ps.limit_reason(101.0, int(1.5 * ps.GB), sizes)
    assert ps.limit_reason(50.0, int(2.5 * ps.GB), sizes) == (
        "stopped when its processes' RSS reached 2.5 GB, over the limit of 2 GB per size")
    unlimited = ps.Sizes(impression_sizes=(1,), steps=0)
    assert ps.limit_reason(1e9, int(1e12), unlimited) is None


def test_measure_size_stops_a_child_over_the_memory_limit(tmp_path, monkeypatch):
    """A stand-in child that allocates past the limit is stopped and reported as unfinished."""
    hog = tmp_path / "hog.py"
    # bytes(n) is calloc'd (untouched pages); bytes([1]) * n writes every page, so RSS holds it.
    hog.write_text("import time\nblock = bytes([1]) * (300 * 1024 * 1024)\ntime.sleep(120)\n")
    real_popen = subprocess.Popen
    monkeypatch.setattr(ps.subprocess, "Popen", lambda argv, env=None: real_popen([sys.executable, str(hog)]))
    sizes = ps.Sizes(impression_sizes=(7,), steps=0, max_rss_gb=0.2, sample_seconds=0.05)
    summary = ps.measure_size(str(tmp_path), 7, sizes)
    assert not summary["finished"]
    assert "over the limit of 0.2 GB" in summary["reason"]
    assert summary["total_seconds"] < 60  # stopped, not waited out


def test_a_multiprocess_run_writes_a_report_of_its_own(tmp_path):
    from watchnext.core.config import Config

    sizes = ps.Sizes(impression_sizes=(1000,), steps=0, batch_size=0, beam_preset="direct-multiprocess")
    assert ps.report_name(sizes) == "pipeline_scale_direct_multiprocess"
    assert ps.report_name(ps.SIZES["full"]) == ps.NAME
    config = ps.child_config(str(tmp_path), 1000, sizes)
    assert config.pipeline.beam_preset == "direct-multiprocess"
    assert config.pipeline.beam_workers == Config().pipeline.beam_workers
