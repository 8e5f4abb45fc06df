"""The typed config: defaults, YAML merging and errors that name the bad key."""

from __future__ import annotations

from watchnext.core.config import Config, ConfigError, from_dict, load_config

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
        ({"pipeline": {"beam_job_server_timeout": 0}}, "pipeline.beam_job_server_timeout: must be >= 1"),
        ({"pipeline": {"beam_job_server_timeout": 0}}, "pipeline.beam_job_server_timeout: must be >= 1"),
        ({"features": {"numeric": ["click"], "log1p_numeric": []}}, "label 'click' is also a model input"),
        ({"heads": [{"name": "c", "type": "binary", "label": "click",
                     "regression_loss": "weighted_logistic"}]}, "heads[0] (c).regression_loss"),
        ({"heads": [{"name": "t", "type": "regression", "label": "watch_time", "label_transform": "log1p",
                     "regression_loss": "weighted_logistic"}]}, "heads[0] (t).label_transform"),
        ({"heads": [{"name": "t", "type": "regression", "label": "watch_time",
                     "regression_loss": "poisson"}]}, "heads[0].regression_loss"),
        ({"features": {"numeric_embeddings": [{"name": "age"}]}},
         "features.numeric_embeddings[0] (age).name: 'age' is not in features.numeric"),
        ({"features": {"numeric_embeddings": [{"name": "user_activity", "buckets": 1}]}},
         "features.numeric_embeddings[0] (user_activity).buckets: 1 must be >= 2"),
        ({"features": {"numeric_embeddings": [{"name": "user_activity", "encoding": "splines"}]}},
         "features.numeric_embeddings[0].encoding: 'splines' is not one of"),
        ({"features": {"numeric_embeddings": [{"name": "user_activity"}, {"name": "user_activity"}]}},
         "features.numeric_embeddings[1] (user_activity).name: listed more than once"),
        ({"features": {"numeric": ["age", "age_buckets"], "log1p_numeric": [],
                       "numeric_embeddings": [{"name": "age"}]}},
         "its encoding's output 'age_buckets' is already a feature or label name"),
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



# ---------------------------------------------------------------------------
# data.source table (e.g. configs/census_income.yaml)

TABLE = {
    "data": {"source": "table", "table": {"columns": ["age", "job", "status", "band"]}},
    "features": {"ids": [{"name": "job", "vocabulary": "job"}], "numeric": ["age"], "log1p_numeric": [],
                 "position": "", "device": "", "request_id": ""},
    "heads": [{"name": "rich", "type": "binary", "label": "rich",
               "label_from": {"column": "band", "positive_values": ["50000+."]}}],
    "model": {"position_mode": "none"},
}


def _head(label: str = "r", type: str = "binary", **label_from: object) -> dict:
    return {"name": "r", "type": type, "label": label,
            "label_from": {"column": "band", "positive_values": ["x"], **label_from}}


def test_logs_stay_the_default_source():
    assert Config().data.source == "logs"
    assert Config().features.position == "position" and Config().model.position_mode == "shallow_tower"


def test_a_table_config_derives_labels_and_types_columns_by_use():
    cfg = from_dict(TABLE)
    assert cfg.derived_labels["rich"].positive_values == ("50000+.",)
    assert cfg.table_numeric_columns == ["age"]  # the derived label is not parsed from the table
    assert Config.from_json(cfg.to_json()) == cfg
    assert cfg.with_data_path("/data/t.csv.gz").data.table.path == "/data/t.csv.gz"
    assert Config().with_data_path("/logs").data.logs_dir == "/logs"


def test_census_config_loads():
    import os

    cfg = load_config(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "census_income.yaml"))
    assert cfg.data.source == "table" and cfg.head_names == ["income", "never_married"]
    t = cfg.data.table
    assert (t.train_percent, t.eval_percent, t.test_percent) == (50, 25, 25)


@pytest.mark.parametrize(
    ("section", "values", "fragment"),
    [
        ("table", {"test_percent": 10}, "data.table: train_percent + eval_percent + test_percent is 110"),
        ("table", {"eval_percent": 0, "train_percent": 100}, "data.table: train_percent and eval_percent"),
        ("table", {"delimiter": ", "}, "data.table.delimiter"),
        ("data", {"source": "logs"}, "heads[0] (rich).label_from: labels are derived while reading"),
        ("data", {"window_spans": 3}, "data.window_spans: a table has no daily spans"),
        ("model", {"position_mode": "shallow_tower"}, "model.position_mode: 'shallow_tower' needs"),
        ("features", {"numeric": ["age", "band"]}, "label_from.column: 'band' is also a model input"),
        ("features", {"ids": [{"name": "title", "vocabulary": "t"}]},
         "features.ids: 'title' is not one of data.table.columns"),
        ("heads", [_head(label="job")], "label 'job' is also a model input"),
        ("heads", [_head(label="status")], "derived label 'status' is also a column"),
        ("heads", [_head(positive_values=[])], "label_from.positive_values: must list at least one"),
        ("heads", [_head(type="regression")], "must be binary"),
    ],
)
def test_table_errors_name_the_key(section, values, fragment):
    import copy

    config = copy.deepcopy(TABLE)
    if section == "table":
        config["data"]["table"].update(values)
    elif section == "heads":
        config["heads"] = values
    else:
        config[section].update(values)
    with pytest.raises(ConfigError) as e:
        from_dict(config)
    assert fragment in str(e.value)


def test_empty_position_needs_position_mode_none_for_logs_too():
    with pytest.raises(ConfigError, match=r"model\.position_mode: 'input_feature' needs features\.position"):
        from_dict({"features": {"position": ""}, "model": {"position_mode": "input_feature"}})
    assert from_dict({"features": {"position": "", "device": ""}, "model": {"position_mode": "none"}})


def test_tuning_is_off_by_default_and_yaml_sets_its_search_space(tmp_path):
    assert Config().tuning.enabled is False
    path = tmp_path / "t.yaml"
    path.write_text("tuning:\n  enabled: true\n  max_trials: 2\n  learning_rate: [1, 0.01]\n"
                    "  algorithm: bayesian\n  objective: weighted_loss\n")
    t = load_config(str(path)).tuning
    assert (t.enabled, t.max_trials, t.algorithm, t.objective) == (True, 2, "bayesian", "weighted_loss")
    assert t.learning_rate == (1.0, 0.01) and all(isinstance(r, float) for r in t.learning_rate)
    assert t.num_experts == Config().tuning.num_experts  # unlisted keys keep their defaults


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"tuning": {"max_trial": 3}}, "tuning.max_trial: unknown key (did you mean 'max_trials'?)"),
        ({"tuning": {"algorithm": "hyperband"}}, "tuning.algorithm"),
        ({"tuning": {"objective": "val_loss"}}, "tuning.objective"),
        ({"tuning": {"max_trials": 0}}, "tuning.max_trials: must be >= 1"),
        ({"tuning": {"train_steps": 0}}, "tuning.train_steps: must be >= 1"),
        ({"tuning": {"num_experts": []}}, "tuning.num_experts: needs at least one value"),
        ({"tuning": {"num_experts": [2, 2]}}, "tuning.num_experts: values repeat"),
        ({"tuning": {"num_experts": [0, 2]}}, "tuning.num_experts: every value must be >= 1"),
        ({"tuning": {"expert_width": [16, 0]}}, "tuning.expert_width"),
        ({"tuning": {"learning_rate": [0.0]}}, "tuning.learning_rate"),
        ({"tuning": {"gate_dropout": [0.1, 1.0]}}, "tuning.gate_dropout"),
        ({"tuning": {"num_experts": "4"}}, "tuning.num_experts: expected a list"),
        ({"tuning": {"objective": "mean_auc"},
          "heads": [{"name": "t", "type": "regression", "label": "watch_time"}]},
         "tuning.objective: mean_auc needs at least one binary head"),
    ],
)
def test_tuning_errors_name_the_key(values, fragment):
    with pytest.raises(ConfigError) as e:
        from_dict(values)
    assert fragment in str(e.value)
