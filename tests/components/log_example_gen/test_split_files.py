"""Split files: TFX names, whole-file writes, and the leftovers of killed writes."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf


def test_split_files_are_renamed_into_place_whole(tmp_path, monkeypatch):
    """A split file appears only once complete: an attempt that dies mid-write leaves no file
    under the final name (only a temporary one, which the executor removes after the run), and
    a second attempt of the same shard replaces the first attempt's file whole."""
    from watchnext.components.log_example_gen import split_files

    path = str(tmp_path / split_files.tfrecord_file_name(3, 16))
    split_files.write_tfrecords(path, [b"first attempt"])
    assert os.listdir(tmp_path) == [os.path.basename(path)]
    split_files.write_tfrecords(path, [b"second", b"attempt"])
    assert [r.numpy() for r in tf.data.TFRecordDataset(path, "GZIP")] == [b"second", b"attempt"]

    class Killed(Exception):
        pass

    real_writer = tf.io.TFRecordWriter

    class DyingWriter(real_writer):
        def write(self, record):
            raise Killed

    monkeypatch.setattr(tf.io, "TFRecordWriter", DyingWriter)
    other = str(tmp_path / split_files.tfrecord_file_name(4, 16))
    with pytest.raises(Killed):
        split_files.write_tfrecords(other, [b"never lands"])
    assert not os.path.exists(other)
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(split_files.INCOMPLETE_PREFIX)]
    assert len(leftovers) == 1
    assert split_files.remove_incomplete(str(tmp_path)) == 1
    assert os.listdir(tmp_path) == [os.path.basename(path)]
