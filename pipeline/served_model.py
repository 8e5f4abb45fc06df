"""The baseline resolver: the model the newest successful push published, the one being served.

The Trainer warm-starts from it and the Evaluator compares the new model with it. Why not
TFX's LatestBlessedModelStrategy: a model can be blessed and never pushed, when the Pusher
crashed or was killed. That strategy then hands the unpushed model to the rerun, so the
Trainer's inputs change and it trains again instead of reusing the finished run, and the
new model is judged against a model nobody serves (measured: a run killed during the
Pusher was rerun, retrained, and refused against its own predecessor, leaving the serving
folder empty). Resolving through the Pusher's PushedModel artifacts, the rerun sees the
same baseline as the killed run, finds Trainer and Evaluator cached and pushes the
blessed model.

The Kubeflow V2 compiler takes only TFX's built-in strategies; there the pipeline keeps
LatestBlessedModelStrategy (see pipeline/pipeline.py).
"""

from __future__ import annotations

from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

from tfx import v1 as tfx

PUSHED_MODEL_TYPE = "PushedModel"
# What TFX's Pusher executors (ours included) record on the PushedModel artifact.
PUSHED_KEY = "pushed"
# The Pusher's input key for the model it pushes.
MODEL_KEY = "model"


def pushed_model_ids(store: Any) -> list[int]:
    """Ids of the Model artifacts that were pushed, oldest push first."""
    import ml_metadata as mlmd

    try:
        artifacts = store.get_artifacts_by_type(PUSHED_MODEL_TYPE)
    except mlmd.errors.NotFoundError:  # no Pusher has run in this store yet
        return []
    pushed = sorted(a.id for a in artifacts
                    if a.state == mlmd.proto.Artifact.LIVE and a.custom_properties[PUSHED_KEY].int_value == 1)
    if not pushed:
        return []
    pusher_of = {e.artifact_id: e.execution_id for e in store.get_events_by_artifact_ids(pushed)
                 if e.type == mlmd.proto.Event.OUTPUT}
    model_of: dict[int, int] = {}
    for e in store.get_events_by_execution_ids(sorted(set(pusher_of.values()))):
        if e.type == mlmd.proto.Event.INPUT and e.path.steps and e.path.steps[0].key == MODEL_KEY:
            model_of[e.execution_id] = e.artifact_id
    return [model_of[pusher_of[a]] for a in pushed if a in pusher_of and pusher_of[a] in model_of]


class LatestPushedModelStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Of the Model artifacts in the channel, the one pushed last; none before the first push."""

    def resolve_artifacts(self, store: Any, input_dict: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if len(input_dict) != 1:
            raise ValueError(f"LatestPushedModelStrategy takes one Model channel, got {sorted(input_dict)}")
        ((key, models),) = input_dict.items()
        by_id = {m.id: m for m in models}
        for model_id in reversed(pushed_model_ids(store)):
            if model_id in by_id:
                return {key: [by_id[model_id]]}
        return {key: []}
