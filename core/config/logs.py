"""`log_schema`: the declared log (core/log_schema_spec.py), checked on its own and against the
features and heads that name its fields.

The section is a `LogSchema`; this module validates it (`validate_log_schema`), checks at load
time that every name the config uses exists in it (`config_names_exist`: a misspelt feature
fails here, in a second, not in Transform minutes later), and reads it back from the JSON that
LogExampleGen receives (`log_schema_from_json`).
"""

from __future__ import annotations

import difflib
import functools
import json
import math

from watchnext.core.config.build import build
from watchnext.core.config.checks import ConfigError, check
from watchnext.core.config.features import FeaturesSection
from watchnext.core.config.heads import Head
from watchnext.core.log_schema import REJECTION_REASONS
from watchnext.core.log_schema_spec import LABEL_RULES, LogSchema

FIELD_TYPES = ("string", "int", "float", "string_list")


def _near(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_log_schema(s: LogSchema, path: str = "log_schema") -> None:
    """Fields unique and well-typed, key fields present and required strings, each label rule
    naming an event type or a numeric field it can read."""
    names = s.field_names
    check(len(set(names)) == len(names), f"{path}.impressions", f"field names repeat: {names}")
    check(bool(names), f"{path}.impressions", "at least one field is needed")
    for i, f in enumerate(s.impressions):
        where = f"{path}.impressions[{i}] ({f.name})"
        check(bool(f.name), f"{where}.name", "must not be empty")
        check(f.type in FIELD_TYPES, f"{where}.type", f"{f.type!r} is not one of {FIELD_TYPES}")
        check(f.unknown_reason in REJECTION_REASONS, f"{where}.unknown_reason",
              f"{f.unknown_reason!r} is not a rejection reason"
              f"{_near(f.unknown_reason, list(REJECTION_REASONS))}")
        for bound in ("minimum", "maximum"):
            value = getattr(f, bound)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            check(value is None or (number and math.isfinite(value)), f"{where}.{bound}",
                  f"{value!r} is not a number")
        check(f.required or f.default is None or _fits(f.type, f.default), f"{where}.default",
              f"{f.default!r} is not a {f.type}")
        check(not (f.required and f.default is not None), f"{where}.default",
              "only an optional field (required: false) has a default")
    for key in ("item_id", "request_id", "user_id", "position"):
        name = getattr(s, key)
        if not name:
            continue
        f = s.impression_field(name)
        optional = f"; set {path}.{key}: '' if the log has none" if key != "item_id" else ""
        check(f is not None, f"{path}.{key}",
              f"{name!r} is not one of {path}.impressions{_near(name, names)}{optional}")
        assert f is not None
        if key == "position":
            check(f.type == "int", f"{path}.position", f"{name!r} must be an int field, not {f.type}")
        elif key != "user_id" or not s.request_id:
            check(f.type == "string" and f.required, f"{path}.{key}",
                  f"{name!r} is a key field: it must be a required string")
    check(bool(s.item_id), f"{path}.item_id", "must name the field identifying the item shown")
    check(bool(s.request_id or s.user_id), f"{path}.user_id",
          "without request_id, impressions are keyed by (user_id, item_id): name the user field")
    types = list(s.event_types)
    check(len(set(types)) == len(types), f"{path}.event_types", f"names repeat: {types}")
    labels = s.label_names
    check(bool(labels), f"{path}.labels", "at least one label is needed")
    check(len(set(labels)) == len(labels), f"{path}.labels", f"label names repeat: {labels}")
    for i, rule in enumerate(s.labels):
        _validate_rule(s, rule, f"{path}.labels[{i}] ({rule.name})")


def _fits(kind: str, value: object) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "string_list":
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok and (kind == "float" or float(value).is_integer())


def _validate_rule(s: LogSchema, rule, where: str) -> None:
    check(rule.rule in LABEL_RULES, f"{where}.rule", f"{rule.rule!r} is not one of {LABEL_RULES}")
    if rule.rule == "field":
        f = s.impression_field(rule.field)
        check(f is not None, f"{where}.field",
              f"{rule.field!r} is not one of the impression fields{_near(rule.field, s.field_names)}")
        assert f is not None
        check(f.type in ("int", "float"), f"{where}.field", f"{rule.field!r} is a {f.type}, not a number")
        check(not rule.event, f"{where}.event", "a field label reads no event")
        if rule.name in s.field_names:
            check(rule.name == rule.field and rule.threshold is None, f"{where}.name",
                  "a label named like an impression field must be that field's own value (no threshold)")
        return
    check(rule.event in s.event_types, f"{where}.event",
          f"{rule.event!r} is not one of event_types {list(s.event_types)}"
          f"{_near(rule.event, list(s.event_types))}")
    check(not rule.field and rule.threshold is None, where, "field and threshold apply to rule 'field' only")
    check(rule.name not in s.field_names, f"{where}.name", f"{rule.name!r} is already an impression field")


def config_names_exist(s: LogSchema, features: FeaturesSection, heads: tuple[Head, ...]) -> None:
    """Every feature and label the config names is a field or a label of the declared log (data.source
    logs), else ConfigError naming the key and the nearest name."""
    fields = s.field_names
    used = {"features.ids": [f.name for f in features.ids], "features.numeric": list(features.numeric),
            "features.log1p_numeric": list(features.log1p_numeric),
            "features.slices": list(features.slices),
            "features.numeric_embeddings": [e.name for e in features.numeric_embeddings]}
    for key in ("position", "device", "request_id"):
        if getattr(features, key):
            used[f"features.{key}"] = [getattr(features, key)]
    for key, names in used.items():
        for name in names:
            hint = (f"; set {key}: '' if the log has none" if key in ("features.position", "features.device",
                                                                      "features.request_id") else "")
            check(name in fields, key, f"{name!r} is not a field of log_schema.impressions"
                  f"{_near(name, fields)}; fields: {', '.join(fields)}{hint}")
    if features.position:
        check(features.position == s.position, "features.position",
              f"{features.position!r} is not log_schema.position ({s.position!r})")
    labels = s.label_names + fields
    for i, h in enumerate(heads):
        for key in ("label", "presence"):
            name = getattr(h, key)
            if name:
                check(name in labels, f"heads[{i}] ({h.name}).{key}",
                      f"{name!r} is not a label of log_schema.labels{_near(name, labels)}; "
                      f"labels: {', '.join(s.label_names)}")


@functools.lru_cache(maxsize=16)
def log_schema_from_json(text: str) -> LogSchema:
    """The LogSchema of its JSON (as `dataclasses.asdict` writes it), validated; empty: the default.

    Cached by text: LogExampleGen's executor asks for it at several steps of one run, and the
    LogSchema is frozen, so every caller may share one instance."""
    if not text:
        return LogSchema()
    values = json.loads(text)
    if not isinstance(values, dict):
        raise ConfigError("log_schema JSON: expected a mapping")
    schema = build(LogSchema, values, "log_schema", base=None)
    validate_log_schema(schema)
    return schema


def log_schema_to_json(schema: LogSchema) -> str:
    """The JSON LogExampleGen receives (round-trips through log_schema_from_json)."""
    import dataclasses

    return json.dumps(dataclasses.asdict(schema), sort_keys=True)
