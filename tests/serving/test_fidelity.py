"""The pushed model loads and answers identically through TF Serving's loader path."""

from __future__ import annotations

from watchnext.serving.fidelity import FidelityError, check_serving_fidelity

import pytest

pytestmark = pytest.mark.slow


def test_tf1_loader_matches_tf2_on_every_output(pushed_model, eval_examples, pipeline_runs):
    config, _, _ = pipeline_runs
    report = check_serving_fidelity(pushed_model, eval_examples)
    assert report.ok
    assert set(report.max_abs_diff) == set(config.head_names) | {"score"}
    assert report.python_ops == []
    assert report.op_count > 10


def test_relative_model_paths_work(pushed_model, eval_examples, monkeypatch):
    import os

    monkeypatch.chdir(os.path.dirname(pushed_model))
    assert check_serving_fidelity(os.path.basename(pushed_model), eval_examples[:8]).ok


def test_fidelity_check_fails_loudly_on_a_directory_that_is_not_a_model(tmp_path, eval_examples):
    with pytest.raises(FidelityError, match="failed"):
        check_serving_fidelity(str(tmp_path), eval_examples)
