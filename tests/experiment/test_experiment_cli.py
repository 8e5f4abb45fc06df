"""`watchnext experiment` and `watchnext simulate --policy` answer a wrong model folder at once,
before TensorFlow is imported, in one line with the usage exit status."""

from __future__ import annotations

from watchnext.core import errors

import pytest


@pytest.mark.parametrize("argv, flag", [
    (["experiment", "--control", "{tmp}/nope", "--treatment", "{tmp}/nope"], "--control"),
    (["simulate", "--out", "{tmp}/logs", "--policy", "{tmp}/nope", "--impressions-per-day", "50"],
     "--policy"),
])
def test_a_missing_model_is_answered_before_tensorflow_is_imported(tmp_path, argv, flag,
                                                                    cli_in_fresh_process):
    result = cli_in_fresh_process([a.format(tmp=tmp_path) for a in argv], str(tmp_path))
    assert result["status"] == errors.EXIT_USAGE
    assert result["heavy"] == []
    assert f"{flag} {tmp_path}/nope: not a SavedModel folder" in result["stderr"]
    assert "Traceback" not in result["stderr"]
