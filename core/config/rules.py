"""The rules that tie two config sections together, each raising ConfigError naming the key to fix.

Each takes only the sections it relates, so that a whole `Config` and a component's view of it
(views.py) check the same rules over what they hold.
"""

from __future__ import annotations

from watchnext.core.config.checks import check
from watchnext.core.config.data import DataSection
from watchnext.core.config.features import FeaturesSection
from watchnext.core.config.heads import Head, derived_labels, label_keys, validate_heads
from watchnext.core.config.model import ModelSection
from watchnext.core.config.tuning import TuningSection


def model_and_inputs_fit(model: ModelSection, heads: tuple[Head, ...], features: FeaturesSection) -> None:
    """The model, its heads and its inputs, each valid and consistent with the others: what the
    whole config and every view that builds the model check alike."""
    model.validate("model")
    validate_heads(heads, "heads")
    features.validate("features")
    labels_are_not_inputs(features, heads)
    position_features_exist(model, features)


def labels_are_not_inputs(features: FeaturesSection, heads: tuple[Head, ...]) -> None:
    """Labels (and presence flags) never feed the model, nor collide with an encoding's output."""
    labels = label_keys(heads)
    for i, e in enumerate(features.numeric_embeddings):
        check(e.output_key not in labels, f"features.numeric_embeddings[{i}] ({e.name}).name",
              f"its encoding's output {e.output_key!r} is already a feature or label name")
    for name in labels:
        check(name not in features.inputs, "heads", f"label {name!r} is also a model input")


def position_features_exist(model: ModelSection, features: FeaturesSection) -> None:
    """The position mode's bias features exist (data without position need mode none)."""
    needs = {"shallow_tower": ("position", "device"), "input_feature": ("position",)}
    for key in needs.get(model.position_mode, ()):
        check(bool(getattr(features, key)), "model.position_mode",
              f"{model.position_mode!r} needs features.{key}, which is empty (data without "
              "position): set model.position_mode to none")


def derived_labels_fit(data: DataSection, features: FeaturesSection, heads: tuple[Head, ...]) -> None:
    """A head's `label_from` rule: only for tables, binary heads, and never from an input column."""
    for i, h in enumerate(heads):
        rule, where = h.label_from, f"heads[{i}] ({h.name}).label_from"
        if not (rule.column or rule.positive_values):
            continue
        check(data.source == "table", where, "labels are derived while reading a table: needs "
              "data.source table (LogExampleGen computes the log labels itself)")
        rule.validate(where)
        check(h.type == "binary", where, f"derives a 0/1 label, so the head must be binary, not {h.type}")
        check(rule.column not in features.inputs, f"{where}.column",
              f"{rule.column!r} is also a model input: the label would leak into the features")


def table_has_the_columns(data: DataSection, features: FeaturesSection, heads: tuple[Head, ...]) -> None:
    """A table with a column list has every column the features and heads name."""
    columns = data.table.columns
    if data.source != "table" or not columns:
        return  # names come from each file's header row, checked while reading
    derived = derived_labels(heads)
    used = {"features.ids": [f.name for f in features.ids],
            "features.numeric": features.numeric,
            "features.slices": features.slices,
            "heads (labels)": [k for k in label_keys(heads) if k not in derived],
            "heads (label_from.column)": [r.column for r in derived.values()]}
    for key, names in used.items():
        for name in names:
            check(name in columns, key, f"{name!r} is not one of data.table.columns")
    for label, rule in derived.items():
        check(label not in columns or label == rule.column, "heads",
              f"derived label {label!r} is also a column of the table: name the head's label otherwise")


def tuning_objective_fits(tuning: TuningSection, heads: tuple[Head, ...]) -> None:
    check(tuning.objective != "mean_auc" or any(h.type == "binary" for h in heads),
          "tuning.objective", "mean_auc needs at least one binary head; use weighted_loss")
