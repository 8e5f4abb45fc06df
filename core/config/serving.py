"""`serving`: where and how the blessed model is pushed."""

from __future__ import annotations

from dataclasses import dataclass

from watchnext.core.config.checks import check


@dataclass(frozen=True)
class ServingSection:
    """Where and how the blessed model is pushed."""

    model_name: str = "watchnext"
    # Empty: <pipeline.output_dir>/serving.
    serving_dir: str = ""
    keep_versions: int = 5

    def validate(self, path: str = "serving") -> None:
        check(self.keep_versions >= 1, f"{path}.keep_versions", "must be >= 1")
