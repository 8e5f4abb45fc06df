"""Two runs on one output folder: the second is refused at once, and a dead holder frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from watchnext.pipeline.output_lock import OutputInUse, output_lock

import pytest


def test_second_holder_is_refused_with_a_clear_message(tmp_path):
    with output_lock(str(tmp_path)):
        with pytest.raises(OutputInUse, match=f"pid {os.getpid()}.*is using {tmp_path}"):
            with output_lock(str(tmp_path)):
                pass
    with output_lock(str(tmp_path)):  # released after the first run
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = ("import sys, time; from watchnext.pipeline.output_lock import output_lock\n"
            f"with output_lock({str(tmp_path)!r}):\n    print('locked', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputInUse):
            with output_lock(str(tmp_path)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.time() + 5
    while True:
        try:
            with output_lock(str(tmp_path)):
                break
        except OutputInUse:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
