"""AtomicPusher's publishing steps: staging + rename, monotonic versions, retention, crash leftovers."""

from __future__ import annotations

import os
import threading

from watchnext.components.atomic_pusher import (
    STAGING_PREFIX,
    clean_staging,
    next_version,
    publish,
    retain,
    version_dirs,
)


def _model(tmp_path, size: int = 1 << 20) -> str:
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "variables" / "variables.data-00000-of-00001").write_bytes(b"x" * size)
    (model / "saved_model.pb").write_bytes(b"pb")
    return str(model)


def test_publish_renames_a_complete_copy_into_place(tmp_path):
    base = str(tmp_path / "serving" / "watchnext")
    path = publish(_model(tmp_path), base, 100)
    assert path == os.path.join(base, "100")
    assert sorted(os.listdir(path)) == ["saved_model.pb", "variables"]
    assert os.path.getsize(os.path.join(path, "variables", "variables.data-00000-of-00001")) == 1 << 20
    assert not [n for n in os.listdir(base) if n.startswith(STAGING_PREFIX)]


def test_a_watcher_never_sees_a_partial_version(tmp_path):
    """Poll the folder while pushes happen: every numeric version seen is already complete."""
    base = str(tmp_path / "serving")
    model = _model(tmp_path, size=8 << 20)
    seen_partial: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for v in version_dirs(base):
                files = os.listdir(os.path.join(base, str(v)))
                if "saved_model.pb" not in files or "variables" not in files:
                    seen_partial.append(str(v))

    watcher = threading.Thread(target=watch)
    watcher.start()
    for v in range(1, 6):
        publish(model, base, v)
    done.set()
    watcher.join()
    assert version_dirs(base) == [1, 2, 3, 4, 5]
    assert seen_partial == []


def test_next_version_is_strictly_newer_even_within_one_second(tmp_path):
    base = str(tmp_path)
    assert next_version(base, now=1000.5) == 1000
    os.makedirs(os.path.join(base, "1000"))
    assert next_version(base, now=1000.9) == 1001
    assert next_version(base, now=2000) == 2000


def test_retain_keeps_the_newest_and_never_the_protected(tmp_path):
    base = str(tmp_path)
    for v in (1, 2, 3, 4, 5):
        os.makedirs(os.path.join(base, str(v)))
    os.makedirs(os.path.join(base, "not-a-version"))
    assert retain(base, keep=2, protect=5) == [1, 2, 3]
    assert version_dirs(base) == [4, 5]
    assert os.path.isdir(os.path.join(base, "not-a-version"))
    assert retain(base, keep=1, protect=4) == []  # 4 is protected even though it is older


def test_clean_staging_removes_only_leftovers(tmp_path):
    base = str(tmp_path)
    os.makedirs(os.path.join(base, f"{STAGING_PREFIX}7", "variables"))
    os.makedirs(os.path.join(base, "6"))
    assert clean_staging(base) == [os.path.join(base, f"{STAGING_PREFIX}7")]
    assert os.listdir(base) == ["6"]
