"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

from watchnext.pipeline.metadata import open_metadata

import pytest


@pytest.fixture()
def store(tmp_path):
    """An empty SQLite ML Metadata store (opened as the runner opens its own), for resolver strategies
    and metadata helpers to query."""
    return open_metadata(str(tmp_path / "mlmd.sqlite"))
