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
        if rel.split(os.sep)[0] in {"tests", ".venv", "scripts", "build"}:
            continue
        assert f"watchnext/{rel}" in wheel_files, f"package {os.path.dirname(rel)} is missing from the wheel"


def test_census_benchmark_reads_the_config_that_is_packaged():
    import watchnext
    from watchnext.benchmarks import census

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
