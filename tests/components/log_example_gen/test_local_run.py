"""LogExampleGen inside a real (one-component) TFX pipeline on LocalDagRunner."""

from __future__ import annotations

import os

from watchnext.components.log_example_gen import make_log_example_gen
from watchnext.pipeline.metadata import open_metadata

import pytest
from tfx import v1 as tfx


@pytest.mark.slow
def test_local_dag_runner_ingests_the_latest_span(tmp_path, tiny):
    logs = str(tmp_path / "logs")
    good = [tiny.line(tiny.impression("r1", c, i)) for i, c in enumerate("abc")]
    for span in (20260101, 20260102):
        tiny.write_logs(logs, span, impressions=good, events=[tiny.line(tiny.event("r1", "b", "click"))])
    gen = make_log_example_gen(logs, eval_percent=50, max_rejected_fraction=0.0)
    metadata_path = str(tmp_path / "mlmd.sqlite")
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="log-example-gen-test", pipeline_root=str(tmp_path / "root"), components=[gen],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path),
        beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    tfx.orchestration.LocalDagRunner().run(pipeline)

    store = open_metadata(metadata_path)
    [examples] = store.get_artifacts_by_type("Examples")
    [rejected] = store.get_artifacts_by_type("watchnext.RejectedRecords")
    assert examples.custom_properties["span"].int_value == 20260102  # set by the FileBasedDriver
    assert rejected.custom_properties["examples_written"].int_value == 3
    assert rejected.custom_properties["span"].int_value == 20260102
    assert os.path.exists(os.path.join(rejected.uri, "counts.json"))
