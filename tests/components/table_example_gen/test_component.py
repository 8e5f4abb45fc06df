"""TableExampleGen's wiring from the config: paths, splits, column types, derived labels."""

from __future__ import annotations

import os

from watchnext.components.table_example_gen import make_table_example_gen, table_spec
from watchnext.components.table_example_gen.component import make_output_config, split_path
from watchnext.components.table_example_gen.parsing import TableSpec
from watchnext.core.config import load_config

import pytest
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

CENSUS_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "census_income.yaml")


def test_census_config_types_columns_by_use_and_derives_both_labels(tmp_path):
    config = load_config(CENSUS_CONFIG)
    spec = table_spec(config)
    assert len(spec.columns) == 42 and spec.columns[-1] == "income_50k"
    assert set(spec.numeric) == set(config.features.numeric)  # every other column stays a string
    assert spec.labels == {"income": ("income_50k", ("50000+.",)),
                           "never_married": ("marital_stat", ("Never married",))}
    inputs = {f.name for f in config.features.ids} | set(config.features.numeric)
    assert not inputs & {"education", "marital_stat", "instance_weight", "income_50k"}
    assert len(inputs) == 38  # 42 columns minus the four above

    gen = make_table_example_gen(config, str(tmp_path / "census-income.test.gz"))
    assert set(gen.outputs) == {"examples", "rejected"}
    assert gen.exec_properties["input_base"] == str(tmp_path)
    output = example_gen_pb2.Output()
    proto_utils.json_to_proto(gen.exec_properties["output_config"], output)
    assert [(s.name, s.hash_buckets) for s in output.split_config.splits] == [
        ("train", 50), ("eval", 25), ("test", 25)]
    assert TableSpec.from_json(gen.exec_properties["table_spec"]) == spec


def test_paths_globs_and_folders(tmp_path):
    assert split_path(str(tmp_path / "a.csv")) == (str(tmp_path), "a.csv")
    assert split_path(str(tmp_path / "part-*.csv.gz")) == (str(tmp_path), "part-*.csv.gz")
    assert split_path(str(tmp_path)) == (str(tmp_path), "*")


def test_a_zero_test_percent_leaves_the_test_split_out():
    splits = make_output_config((80, 20, 0)).split_config.splits
    assert [(s.name, s.hash_buckets) for s in splits] == [("train", 80), ("eval", 20)]
    with pytest.raises(ValueError, match="sum 100"):
        make_output_config((80, 30, 0))


def test_no_path_is_named():
    config = load_config(CENSUS_CONFIG)
    with pytest.raises(ValueError, match=r"data\.table\.path.*--logs PATH"):
        make_table_example_gen(config)
