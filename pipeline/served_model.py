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
from watchnext.pipeline.metadata import pushed_model_ids

from tfx import v1 as tfx


class LatestPushedModelStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Of the Model artifacts in the channel, the one pushed last; none before the first push
    (which models were pushed: `metadata.pushed_model_ids`)."""

    def resolve_artifacts(self, store: Any, input_dict: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if len(input_dict) != 1:
            raise ValueError(f"LatestPushedModelStrategy takes one Model channel, got {sorted(input_dict)}")
        ((key, models),) = input_dict.items()
        by_id = {m.id: m for m in models}
        for model_id in reversed(pushed_model_ids(store)):
            if model_id in by_id:
                return {key: [by_id[model_id]]}
        return {key: []}
