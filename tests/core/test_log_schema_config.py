"""The `log_schema` config section: the declared log, and the load-time check of the names the
features and heads use against it (issue 17)."""

from __future__ import annotations

import os
import subprocess
import sys

from watchnext.core import log_schema as schema
from watchnext.core.config import DEFAULT_HEADS, Config, ConfigError, load_config
from watchnext.core.config.logs import log_schema_from_json, log_schema_to_json
from watchnext.core.log_schema_spec import DEFAULT_LOG_SCHEMA, ROW_KEY, LogSchema

import pytest

RATINGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "item_ratings.yaml")


def test_the_default_schema_is_todays_youtube_schema():
    s = Config().log_schema
    assert s == DEFAULT_LOG_SCHEMA and s.is_default
    assert s.example_fields() == schema.IMPRESSION_FIELDS + schema.LABEL_FIELDS
    assert s.example_feature_types() == schema.example_feature_types()
    assert s.event_fields == schema.EVENT_FIELDS and s.key == ("request_id", "candidate_video_id")
    assert s.label_names == list(schema.LABELS)
    # The default heads read the default labels.
    assert {k for h in DEFAULT_HEADS for k in (h.label, h.presence) if k} <= set(s.label_names)


def test_the_schema_round_trips_through_json():
    ratings = load_config(RATINGS).log_schema
    for s in (DEFAULT_LOG_SCHEMA, ratings):
        assert log_schema_from_json(log_schema_to_json(s)) == s
    assert log_schema_from_json("") == DEFAULT_LOG_SCHEMA
    assert Config.from_json(load_config(RATINGS).to_json()) == load_config(RATINGS)


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"features": {"numeric": ["video_durration"], "log1p_numeric": []}},
     "config key features.numeric: 'video_durration' is not a field of log_schema.impressions "
     "(did you mean 'video_duration'?)"),
    ({"features": {"slices": ["countri"]}}, "features.slices: 'countri' is not a field"),
    ({"heads": [{"name": "c", "type": "binary", "label": "clik"}]},
     "config key heads[0] (c).label: 'clik' is not a label of log_schema.labels (did you mean 'click'?)"),
    ({"heads": [{"name": "c", "type": "binary", "label": "click"},
                {"name": "r", "type": "regression", "label": "rating", "presence": "rating_presnt"}]},
     "heads[1] (r).presence: 'rating_presnt'"),
    ({"log_schema": {"labels": [{"name": "x", "rule": "any", "event": "clik"}]}},
     "log_schema.labels[0] (x).event: 'clik' is not one of event_types"),
    ({"log_schema": {"labels": [{"name": "x", "rule": "field", "field": "country"}]}},
     "log_schema.labels[0] (x).field: 'country' is a string, not a number"),
    ({"log_schema": {"labels": [{"name": "x", "rule": "sum", "event": "watch", "threshold": 3}]}},
     "field and threshold apply to rule 'field' only"),
    ({"log_schema": {"item_id": "video"}}, "log_schema.item_id: 'video' is not one of"),
    ({"log_schema": {"impressions": [{"name": "a", "type": "text"}]}}, "log_schema.impressions[0].type"),
    ({"log_schema": {"impressions": [{"name": "a", "required": True, "default": "x"}]}},
     "only an optional field"),
])
def test_names_the_schema_lacks_fail_at_load_time_naming_the_key(overrides, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides)
    assert fragment in str(e.value)


def test_a_schema_without_position_needs_features_without_position():
    ratings = load_config(RATINGS)
    values = {"log_schema": ratings.to_dict()["log_schema"]}
    with pytest.raises(ConfigError) as e:
        load_config(None, values)  # the default features name position, device, …
    assert "config key features" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config(RATINGS, {"features": {"position": "timestamp"}, "model": {"position_mode": "none"}})
    assert "features.position: 'timestamp' is not log_schema.position" in str(e.value)


def test_in_memory_configs_are_not_checked_against_the_logs():
    """Only load_config checks the names: a Config built in memory (model tests, a component's JSON)
    may describe examples that never came from the logs."""
    from watchnext.core.config import from_dict

    config = from_dict({"features": {"numeric": ["duration"], "log1p_numeric": []}})
    assert config.features.numeric == ("duration",)


def test_a_table_config_ignores_the_log_schema():
    table = os.path.join(os.path.dirname(RATINGS), "census_income.yaml")
    assert load_config(table).log_schema == DEFAULT_LOG_SCHEMA  # its features name no log field


def test_the_ratings_example_declares_a_log_without_requests_events_or_position():
    s = load_config(RATINGS).log_schema
    assert not s.uses_events and not s.position and not s.request_id
    assert s.key == ("user_id", "item_id") and s.partition_feature == ROW_KEY
    assert s.example_feature_types() == {"user_id": "bytes", "item_id": "bytes", "rating": "float",
                                         "timestamp": "int64", "liked": "int64"}
    assert s.partition_value({"user_id": "u1", "item_id": "i2"}) == "2:u1i2"


def test_the_name_check_runs_without_tensorflow_in_a_fresh_interpreter():
    code = ("import sys\nfrom watchnext.core.config import load_config, ConfigError\n"
            "try:\n    load_config(None, {'features': {'numeric': ['video_durration'],\n"
            "                                    'log1p_numeric': []}})\n"
            "except ConfigError as e:\n    print(e)\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True)
    assert "did you mean 'video_duration'" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_optional_fields_fill_with_their_default():
    f = schema.Field("country", "string", required=False, default="ZZ")
    assert f.fill_value == "ZZ"
    assert schema.Field("n", "int", required=False).fill_value == 0
    assert schema.Field("h", "string_list", required=False).fill_value == []
    assert LogSchema().impression_field("nope") is None


def test_a_log_without_position_cannot_have_a_shallow_tower():
    with pytest.raises(ConfigError) as e:
        load_config(RATINGS, {"model": {"position_mode": "shallow_tower"}})
    assert "model.position_mode: 'shallow_tower' needs features.position" in str(e.value)
    with pytest.raises(ConfigError) as e:  # naming a position the log lacks fails too, with the fix
        load_config(RATINGS, {"features": {"position": "position"}, "model": {"position_mode": "none"}})
    assert "features.position: 'position' is not a field of log_schema.impressions" in str(e.value)
    assert "set features.position: '' if the log has none" in str(e.value)
