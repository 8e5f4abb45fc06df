"""`heads`: the objectives, each with its label, loss and place in the combined score."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from watchnext.core.config.checks import check
from watchnext.core.contract import SCORE_OUTPUT
from watchnext.core.log_schema import CLICK, DISMISS, LIKE, RATING, RATING_PRESENT, WATCH_TIME

HEAD_TYPES = ("binary", "regression")
HEAD_GROUPS = ("engagement", "satisfaction")
LABEL_TRANSFORMS = ("none", "log1p")
REGRESSION_LOSSES = ("mse", "weighted_logistic")
PRESENCE_LOSSES = ("batch_mean", "labelled_mean")
SCORE_FORMS = ("identity", "log1p", "complement")


@dataclass(frozen=True)
class LabelFrom:
    """How a table's ExampleGen derives a binary label from a raw column.

    label = 1 when the column's value, with surrounding spaces stripped, is one of
    `positive_values`, else 0 (e.g. income_50k "50000+." → 1). Empty `column`: the label
    column is read as it is.
    """

    column: str = ""
    positive_values: tuple[str, ...] = ()

    def validate(self, path: str) -> None:
        """A rule names its column and at least one positive value (called only when one is set)."""
        check(bool(self.column), f"{path}.column", "must name the raw column the label comes from")
        check(bool(self.positive_values), f"{path}.positive_values",
              "must list at least one value that means label 1")


@dataclass(frozen=True)
class Head:
    """One objective: its label, loss and place in the combined score."""

    name: str
    type: Literal["binary", "regression"]
    label: str
    group: Literal["engagement", "satisfaction"] = "engagement"
    loss_weight: float = 1.0
    # Exponent w_k of this head's prediction in score = prod_k f_k(pred_k) ** w_k.
    score_weight: float = 1.0
    # f_k: identity (p, or the regression value), complement (1 - p, for binary heads
    # whose event is bad, e.g. dismiss) or log1p (log(1 + value), for regression heads).
    score_form: Literal["identity", "log1p", "complement"] = "identity"
    # Regression label transform used for the loss (predictions are served untransformed).
    label_transform: Literal["none", "log1p"] = "none"
    # Label that says whether this head's label exists (loss and metrics masked to it).
    presence: str = ""
    # Whether the shallow tower's position bias is added to this head's logit.
    position_bias: bool = False
    # Blessing: an absolute bound (AUC lower bound or MSE upper bound; 0 disables).
    value_threshold: float = 0.0
    # data.source table only: derive this binary head's `label` column from a raw column.
    label_from: LabelFrom = field(default_factory=LabelFrom)
    # Regression heads only. "mse": squared error on the label after label_transform.
    # "weighted_logistic" (Covington et al., RecSys 2016, for expected watch time): a
    # logistic regression in which every example is a negative of weight 1 and a
    # positive of weight y (the label, >= 0, label_transform "none"), normalized by the
    # batch's total weight. Its optimum is exp(logit) = E[y] in label units, the logit is
    # a log-odds on the scale of the binary heads' (so the shallow tower's additive
    # position bias means the same for it as for click: log E[y] = log P(examined) + …),
    # and its gradients are bounded like a classifier's. MSE on log1p of a zero-inflated
    # target (watch time is 0 on every unclicked impression) sent 4x click's gradient into
    # the shallow tower, whose one bias then fit watch time's scale, not click's: click's
    # share of the oracle gap fell from 0.883 (click alone) to 0.840 (docs/notes/transfer.md).
    regression_loss: Literal["mse", "weighted_logistic"] = "mse"
    # Heads with a `presence` key: how the masked loss is averaged. "labelled_mean": over
    # the batch's labelled examples only, so a head labelled on 0.7% of impressions (the
    # survey rating) is the squared error of one or two examples per batch, each weighing
    # ~150× an example of any other head: its noisy gradient then dominates the shared
    # layers and Adam's second moments there. "batch_mean": Σ over labelled examples / batch
    # size (the labelled mean × the labelled fraction), so every example weighs the same in
    # every head; the head's own tower still learns at full speed (Adam is scale-free per
    # parameter). Default batch_mean (docs/notes/transfer.md).
    presence_loss: Literal["batch_mean", "labelled_mean"] = "batch_mean"

    def validate(self, path: str) -> None:
        """Raise ConfigError naming the key (e.g. `heads[1] (like).score_form`) of the first bad value."""
        check(re.fullmatch(r"[a-z][a-z0-9_]*", self.name) is not None, f"{path}.name",
              "must be a lower-case identifier (it names a serving output)")
        check(self.name != SCORE_OUTPUT, f"{path}.name", f"{SCORE_OUTPUT!r} is the combined output's name")
        check(self.type in HEAD_TYPES, f"{path}.type", f"{self.type!r} not in {HEAD_TYPES}")
        check(self.group in HEAD_GROUPS, f"{path}.group", f"{self.group!r} not in {HEAD_GROUPS}")
        check(self.label_transform in LABEL_TRANSFORMS, f"{path}.label_transform",
              f"{self.label_transform!r} not in {LABEL_TRANSFORMS}")
        check(self.score_form in SCORE_FORMS, f"{path}.score_form",
              f"{self.score_form!r} not in {SCORE_FORMS}")
        check(self.loss_weight >= 0, f"{path}.loss_weight", "must be >= 0")
        check(self.score_form in ({"identity", "complement"} if self.type == "binary"
                                  else {"identity", "log1p"}), f"{path}.score_form",
              f"{self.score_form!r} does not apply to a {self.type} head")
        check(not (self.type == "binary" and self.label_transform != "none"),
              f"{path}.label_transform", "binary heads take their label as is")
        check(self.presence_loss in PRESENCE_LOSSES, f"{path}.presence_loss",
              f"{self.presence_loss!r} not in {PRESENCE_LOSSES}")
        check(self.regression_loss in REGRESSION_LOSSES, f"{path}.regression_loss",
              f"{self.regression_loss!r} not in {REGRESSION_LOSSES}")
        check(self.regression_loss == "mse" or self.type == "regression", f"{path}.regression_loss",
              "applies to regression heads only (binary heads use cross-entropy)")
        check(self.regression_loss != "weighted_logistic" or self.label_transform == "none",
              f"{path}.label_transform", "weighted_logistic predicts E[label] in label units; "
              "it needs label_transform 'none'")


# Each head is named after the default log schema's label it reads (core/log_schema.py).
# The shallow tower's bias goes to every head whose event needs the item to be seen: a click,
# the watch that follows it, a like (given after a click) and a dismissal (of a slot the user
# looked at). Without it the like and dismiss heads could not tell "not seen" from "not
# wanted": at 1M simulated impressions like closed 0.79 of the oracle's AUC gap without the
# bias and 0.92 with it, dismiss 0.60 and 0.67, click unchanged (docs/notes/head_epochs.md).
# The survey rating is given only after a watch, so its value does not depend on position.
DEFAULT_HEADS: tuple[Head, ...] = (
    Head(CLICK, "binary", CLICK, "engagement", score_weight=1.0,
         position_bias=True, value_threshold=0.55),
    Head(WATCH_TIME, "regression", WATCH_TIME, "engagement", loss_weight=0.5,
         score_weight=0.5, score_form="log1p", position_bias=True, regression_loss="weighted_logistic"),
    Head(LIKE, "binary", LIKE, "satisfaction", score_weight=0.5, position_bias=True, value_threshold=0.52),
    Head(DISMISS, "binary", DISMISS, "satisfaction", score_weight=1.0, score_form="complement",
         position_bias=True),
    Head(RATING, "regression", RATING, "satisfaction", loss_weight=0.5,
         score_weight=0.25, presence=RATING_PRESENT),
)


def validate_heads(heads: tuple[Head, ...], path: str = "heads") -> None:
    """At least one head, unique names, and each head valid on its own."""
    check(len(heads) >= 1, path, "at least one head is needed")
    names = [h.name for h in heads]
    check(len(set(names)) == len(names), path, f"head names repeat: {names}")
    for i, h in enumerate(heads):
        h.validate(f"{path}[{i}] ({h.name})")


def head_named(heads: tuple[Head, ...], name: str) -> Head:
    for h in heads:
        if h.name == name:
            return h
    raise KeyError(f"no head named {name!r}; heads are {[h.name for h in heads]}")


def label_keys(heads: tuple[Head, ...]) -> list[str]:
    """Every label-like column: labels and presence indicators (never model inputs)."""
    keys = [h.label for h in heads] + [h.presence for h in heads if h.presence]
    return list(dict.fromkeys(keys))


def derived_labels(heads: tuple[Head, ...]) -> dict[str, LabelFrom]:
    """{label column: rule} of the heads whose label a table's ExampleGen derives."""
    return {h.label: h.label_from for h in heads if h.label_from.column}
