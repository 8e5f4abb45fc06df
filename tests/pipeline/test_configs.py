"""The typed config: defaults, YAML merging and errors that name the bad key."""

from __future__ import annotations

from watchnext.pipeline.configs import Config, ConfigError, from_dict, load_config

import pytest


def test_defaults_are_valid_and_round_trip_through_json():
    cfg = Config()
    cfg.validate()
    assert Config.from_json(cfg.to_json()) == cfg
    assert cfg.head_names == ["click", "watch_time", "like", "dismiss", "rating"]


def test_yaml_overrides_only_what_it_lists(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  num_experts: 8\ntraining:\n  train_steps: 10\n")
    cfg = load_config(str(path))
    assert cfg.model.num_experts == 8
    assert cfg.training.train_steps == 10
    assert cfg.model.shared_hidden_units == Config().model.shared_hidden_units


def test_heads_list_replaces_the_default_heads():
    cfg = from_dict({"heads": [{"name": "ctr", "type": "binary", "label": "click"}]})
    assert cfg.head_names == ["ctr"]


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"model": {"num_expert": 3}}, "model.num_expert: unknown key (did you mean 'num_experts'?)"),
        ({"model": {"architecture": "moe"}}, "model.architecture"),
        ({"training": {"train_steps": "many"}}, "training.train_steps: expected an integer"),
        ({"model": {"gate_dropout": 1.5}}, "model.gate_dropout"),
        ({"heads": [{"name": "x", "type": "binary"}]}, "heads[0]"),
        ({"heads": [{"name": "score", "type": "binary", "label": "click"}]}, "'score'"),
        ({"heads": [{"name": "c", "type": "binary", "label": "click", "score_form": "log1p"}]},
         "score_form"),
        ({"pipeline": {"name": "Watch_Next"}}, "pipeline.name"),
        ({"features": {"numeric": ["click"], "log1p_numeric": []}}, "label 'click' is also a model input"),
    ],
)
def test_errors_name_the_key(values, fragment):
    with pytest.raises(ConfigError) as e:
        from_dict(values)
    assert fragment in str(e.value)


def test_missing_or_broken_file_is_reported_with_its_path(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        load_config(str(bad))
