"""The pipeline's Evaluator: paired, batched, numpy metrics (see component.py and metrics.py)."""

from watchnext.components.evaluator.component import Evaluator, read_metrics

__all__ = ["Evaluator", "read_metrics"]
