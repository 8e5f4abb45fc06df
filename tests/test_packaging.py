"""The installed distribution (wheel, Kubeflow image) carries what a clone has and the code reads.

An editable install hides packaging gaps: `watchnext/configs/...` resolves to the clone. These
tests build a real wheel from the repository's files and look inside it, and check that the
Kubeflow image copies the same folders.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Folders of the repository that are deliberately not part of the distribution (setup.py).
OUTSIDE_THE_PACKAGE = ("bench", "scripts", "tests")
# What never goes into a wheel; copying it would only slow the build down.
NOT_SOURCES = (".venv", ".git", "tests", "reports", "build", "dist", "watchnext_output", "__pycache__",
               "*.egg-info", ".pytest_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    src = tmp_path_factory.mktemp("src") / "watchnext"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-w", str(out), str(src)],
        check=True, capture_output=True, text=True)
    (wheel,) = glob.glob(str(out / "watchnext-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_carries_the_dataset_configs_and_deploy_files(wheel_files):
    configs = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "configs", "*.yaml")))
    assert configs, "no dataset config in configs/"
    for rel in [*configs, "kubeflow/Dockerfile", "cli.py", "__main__.py"]:
        assert f"watchnext/{rel}" in wheel_files, f"{rel} is missing from the wheel"


def test_wheel_carries_every_subpackage(wheel_files):
    for init in glob.glob(os.path.join(ROOT, "*", "**", "__init__.py"), recursive=True):
        rel = os.path.relpath(init, ROOT)
        if rel.split(os.sep)[0] in {*OUTSIDE_THE_PACKAGE, ".venv", "build"}:
            continue
        assert f"watchnext/{rel}" in wheel_files, f"package {os.path.dirname(rel)} is missing from the wheel"


def test_wheel_leaves_out_benchmarks_drills_scripts_and_tests(wheel_files):
    """bench/ (benchmarks, the crash drill, experiments), scripts/ and tests/ run from a clone and
    import watchnext as a user would; they are not part of what users install."""
    for folder in OUTSIDE_THE_PACKAGE:
        assert os.path.isdir(os.path.join(ROOT, folder)), f"{folder}/ is not in the repository"
        shipped = sorted(f for f in wheel_files if f.startswith(f"watchnext/{folder}/"))
        assert not shipped, f"{folder}/ is in the wheel: {shipped[:5]}"
    assert not [f for f in wheel_files if f.startswith(("bench/", "scripts/", "tests/"))]
    assert "watchnext/pipeline/crash.py" not in wheel_files
    # What the package does ship is still there (the check above is not vacuous).
    assert "watchnext/pipeline/local_runner.py" in wheel_files


def test_census_benchmark_reads_the_config_that_is_packaged():
    import watchnext
    from bench import census

    # The benchmark reads the config from the installed package, which is why it must be packaged.
    package = os.path.dirname(os.path.abspath(watchnext.__file__))
    assert os.path.relpath(census.CONFIG_FILE, package) == os.path.join("configs", "census_income.yaml")
    assert census.CONFIG_FILE.is_file()


def test_kubeflow_image_copies_every_folder_the_pipeline_reads():
    dockerfile = open(os.path.join(ROOT, "kubeflow", "Dockerfile"), encoding="utf-8").read()
    copied = set(re.findall(r"^COPY (\S+)/ \1/$", dockerfile, flags=re.M))
    for folder in ("components", "configs", "kubeflow", "models", "pipeline", "serving", "simulator"):
        assert folder in copied, f"kubeflow/Dockerfile does not COPY {folder}/"
    for source in copied:
        assert os.path.isdir(os.path.join(ROOT, source)), f"kubeflow/Dockerfile copies a missing {source}/"
