"""The training window: older spans are ingested once, each by the pipeline's own ExampleGen."""

from __future__ import annotations

from watchnext.core.config import load_config
from watchnext.pipeline.local_runner import RunPaths, ingest_window, spans_on_disk
from watchnext.pipeline.metadata import ingested_spans
from watchnext.simulator.simulate import simulate

import pytest

pytestmark = pytest.mark.slow


def test_older_spans_of_the_window_are_ingested_once(tmp_path):
    logs = str(tmp_path / "logs")
    simulate(logs, days=3, impressions_per_day=600, seed=5, start_date="20260301")
    assert spans_on_disk(logs) == [20260301, 20260302, 20260303]
    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path / "out")},
                                "data": {"logs_dir": logs, "window_spans": 2}})
    paths = RunPaths(config.pipeline.output_dir)

    # Window of 2: only the older span of the newest two needs ingesting here; the
    # newest one is the main pipeline's ExampleGen's job.
    assert ingest_window(config, logs, paths) == [20260302]
    assert ingested_spans(paths.metadata_path) == {20260302}
    assert ingest_window(config, logs, paths) == []


def test_a_folder_without_spans_is_a_clear_error(tmp_path):
    from watchnext.pipeline.local_runner import run_local

    config = load_config(None, {"pipeline": {"output_dir": str(tmp_path / "out")}})
    with pytest.raises(FileNotFoundError, match="no spans in"):
        run_local(config, str(tmp_path))
