"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import ml_metadata as mlmd
import pytest
from ml_metadata.proto import metadata_store_pb2


@pytest.fixture()
def store(tmp_path):
    """An empty SQLite ML Metadata store, for resolver strategies to query."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "mlmd.sqlite")
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return mlmd.MetadataStore(config)
