"""`watchnext experiment` and `watchnext simulate --policy` answer a wrong model folder at once,
before TensorFlow is imported, in one line with the usage exit status."""

from __future__ import annotations

import json
import subprocess
import sys

from watchnext.core import errors

import pytest

HEAVY = ("tensorflow", "tfx", "apache_beam")


def _main(argv: list[str], cwd: str) -> dict:
    code = ("import json, sys\nfrom watchnext.cli import main\n"
            f"status = main({argv!r})\n"
            f"print(json.dumps({{'status': status, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


@pytest.mark.parametrize("argv, flag", [
    (["experiment", "--control", "{tmp}/nope", "--treatment", "{tmp}/nope"], "--control"),
    (["simulate", "--out", "{tmp}/logs", "--policy", "{tmp}/nope", "--impressions-per-day", "50"],
     "--policy"),
])
def test_a_missing_model_is_answered_before_tensorflow_is_imported(tmp_path, argv, flag):
    result = _main([a.format(tmp=tmp_path) for a in argv], str(tmp_path))
    assert result["status"] == errors.EXIT_USAGE
    assert result["heavy"] == []
    assert f"{flag} {tmp_path}/nope: not a SavedModel folder" in result["stderr"]
    assert "Traceback" not in result["stderr"]
