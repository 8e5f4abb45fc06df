"""A ranking policy that is a pushed model, used exactly as it is served.

Each simulated request becomes the `watchnext rank` client's request (request-level
features, one object per candidate, the config's score weights, no position: a served
slate has none yet), its tf.Examples are built by the client's own request_to_examples,
and the model's `serving_default` scores them, as TF Serving would. Requests are sent in
batches of whole requests (as a server's request batching would group them); each
example is scored on its own, so a candidate's score does not depend on the batching.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.contract import SCORE_OUTPUT as SCORE_KEY
from watchnext.serving.client import CANDIDATES_KEY, InProcessBackend, request_to_examples
from watchnext.simulator.policy import Requests

import numpy as np

# Examples per call of serving_default: big enough to amortize the call, small enough to
# keep the batch's memory bounded (a batch of 40-candidate requests is ~100 of them).
BATCH_EXAMPLES = 4096


def rank_request(requests: Requests, i: int, score_weights: dict[str, float] | None = None
                 ) -> tuple[dict[str, Any], np.ndarray]:
    """Request `i` as the `rank` client's JSON request, and the pool indices of its candidates.

    Only valid candidates are sent (no repeats, not the query video); position is left out.
    """
    world, p = requests.world, requests.world.p
    user = int(requests.user[i])
    cols = np.flatnonzero(requests.valid[i])
    request: dict[str, Any] = {
        "user_id": world.user_ids[user],
        "query_video_id": world.video_ids[int(requests.query[i])],
        "device": p.devices[int(requests.device[i])],
        "country": p.countries[int(world.user_country[user])],
        "user_activity": float(requests.activity[i]),
        "watch_history": list(world.history_ids[user]),
        CANDIDATES_KEY: [{"candidate_video_id": world.video_ids[int(requests.candidates[i, j])],
                          "video_duration": float(requests.video_duration[i, j]),
                          "video_age_days": float(requests.video_age_days[i, j]),
                          "video_log_views": float(requests.video_log_views[i, j])} for j in cols],
    }
    if score_weights is not None:
        request["score_weights"] = dict(score_weights)
    return request, cols


class ServedModelPolicy:
    """Scores each request's candidates with a SavedModel's serving_default (higher first).

    `head_names` and `score_weights` are the config's heads and their score weights; every
    example carries the weights, as a `rank` request naming them would.
    """

    def __init__(self, model_dir: str, head_names: Sequence[str], score_weights: Sequence[float],
                 backend: Any = None, batch_examples: int = BATCH_EXAMPLES) -> None:
        self.model_dir = model_dir
        self.head_names = list(head_names)
        self.score_weights = [float(w) for w in score_weights]
        self.backend = backend if backend is not None else InProcessBackend(model_dir)
        self.batch_examples = batch_examples

    def __call__(self, requests: Requests, rng: np.random.Generator) -> np.ndarray:
        weights = dict(zip(self.head_names, self.score_weights, strict=True))
        scores = np.full(requests.candidates.shape, -np.inf)
        batch: list[bytes] = []
        where: list[tuple[int, np.ndarray]] = []
        for i in range(len(requests)):
            request, cols = rank_request(requests, i, weights)
            batch += request_to_examples(request, self.head_names, self.score_weights)
            where.append((i, cols))
            if len(batch) >= self.batch_examples or i == len(requests) - 1:
                values = self._score(batch)
                start = 0
                for row, c in where:
                    scores[row, c] = values[start:start + len(c)]
                    start += len(c)
                batch, where = [], []
        return scores

    def _score(self, examples: list[bytes]) -> np.ndarray:
        """The `score` output for `examples`, checked as the rank client checks it."""
        outputs = self.backend.predict(examples)
        if SCORE_KEY not in outputs:
            raise RuntimeError(f"{self.model_dir}: the model returned no {SCORE_KEY!r} output "
                               f"(got {sorted(outputs)})")
        values = np.asarray(outputs[SCORE_KEY], dtype=np.float64).reshape(-1)
        if len(values) != len(examples):
            raise RuntimeError(f"{self.model_dir}: {len(values)} scores for {len(examples)} candidates")
        if not all(math.isfinite(v) for v in values.tolist()):
            raise RuntimeError(f"{self.model_dir}: a score is not finite: the model is broken")
        return values
