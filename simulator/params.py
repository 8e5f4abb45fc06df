"""The parameters of a simulated world and of how much of it to log (SimulatorParams)."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Literal

from watchnext.core import log_schema as schema

import numpy as np


@dataclass(frozen=True)
class SimulatorParams:
    """Everything that defines a simulated world and how much of it to log."""

    days: int = 1
    # Exactly this many per day: ceil(n / slate_size) requests, the last one cut short if needed.
    impressions_per_day: int = 20000
    seed: int = 7
    # First span, YYYYMMDD (UTC day); later days follow.
    start_date: str = "20260101"
    num_users: int = 2000
    num_videos: int = 1000
    latent_dim: int = 8
    slate_size: int = 10
    # Candidates the logging policy scores per request (it shows the best slate_size).
    pool_size: int = 40
    shuffle_fraction: float = 0.1
    # Cosine between the engagement and satisfaction weight vectors (Ma et al., KDD'18).
    task_correlation: float = 0.8
    # Fraction of watched (clicked) impressions that get a 1-5 survey rating.
    survey_rate: float = 0.05
    # Standard deviation of the logging policy's noise on relevance.
    policy_noise: float = 1.0
    # Weight of a video's standardized log popularity in the logging policy's score. A
    # production policy is an earlier model trained on its own clicks, so it promotes what
    # was popular beyond its relevance; popularity (visible to the model as
    # video_log_views) is then confounded with position, which is the selection bias the
    # shallow tower exists to remove. 0: the policy ranks by relevance (plus noise) alone.
    policy_popularity: float = 0.0
    devices: tuple[str, ...] = ("mobile", "desktop", "tablet", "tv")
    device_shares: tuple[float, ...] = (0.55, 0.3, 0.1, 0.05)
    # Examination e = 1/(1+position)^eta, per device.
    device_eta: tuple[float, ...] = (1.0, 0.6, 0.8, 1.4)
    countries: tuple[str, ...] = ("US", "IN", "BR", "GB", "DE", "JP", "MX", "FR", "ID", "NG")
    # Files per log per span.
    shards: int = 4
    log_format: Literal["jsonl", "parquet"] = "jsonl"

    def validate(self) -> None:
        """Raise ValueError naming the first bad parameter."""
        def check(ok: bool, name: str, msg: str) -> None:
            if not ok:
                raise ValueError(f"simulator parameter {name}={getattr(self, name)!r}: {msg}")

        check(self.days >= 1, "days", "must be >= 1")
        check(self.impressions_per_day >= 1, "impressions_per_day", "must be >= 1")
        check(re.fullmatch(r"\d{8}", self.start_date) is not None
              and parse_date(self.start_date) is not None, "start_date", "must be a date YYYYMMDD")
        check(self.num_users >= 1, "num_users", "must be >= 1")
        check(self.num_videos >= self.pool_size + 1, "num_videos", "must exceed pool_size")
        check(self.latent_dim >= 1, "latent_dim", "must be >= 1")
        check(1 <= self.slate_size <= schema.MAX_POSITION, "slate_size",
              f"must be in [1, {schema.MAX_POSITION}]")
        check(self.pool_size >= 2 * self.slate_size, "pool_size", "must be >= 2 * slate_size")
        check(0.0 <= self.shuffle_fraction <= 1.0, "shuffle_fraction", "must be in [0, 1]")
        check(-1.0 <= self.task_correlation <= 1.0, "task_correlation", "must be in [-1, 1]")
        check(0.0 <= self.survey_rate <= 1.0, "survey_rate", "must be in [0, 1]")
        check(self.policy_noise >= 0.0, "policy_noise", "must be >= 0")
        check(math.isfinite(self.policy_popularity), "policy_popularity", "must be a finite number")
        check(set(self.devices) <= set(schema.DEVICES) and len(set(self.devices)) == len(self.devices),
              "devices", f"must be distinct values of {schema.DEVICES}")
        check(len(self.device_shares) == len(self.devices) and min(self.device_shares) >= 0
              and sum(self.device_shares) > 0, "device_shares", "one non-negative share per device")
        check(len(self.device_eta) == len(self.devices) and min(self.device_eta) >= 0,
              "device_eta", "one non-negative eta per device")
        check(len(self.countries) >= 1, "countries", "at least one country")
        check(self.shards >= 1, "shards", "must be >= 1")
        check(self.log_format in ("jsonl", "parquet"), "log_format", "must be jsonl or parquet")

    def examination(self, position: np.ndarray, device_index: np.ndarray) -> np.ndarray:
        """e(position, device) = 1 / (1 + position) ** eta_device."""
        eta = np.asarray(self.device_eta, dtype=np.float64)[device_index]
        return 1.0 / np.power(1.0 + position, eta)


def parse_date(text: str) -> dt.date | None:
    """The date of a YYYYMMDD string, or None if it is not one."""
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None

