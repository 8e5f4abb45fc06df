"""Splitting traffic between an experiment's arms by a hash of the user.

A user always lands in the same arm (for a given salt), as in a production A/B test:
the arms are then independent samples of users, which is what the per-user confidence
intervals (experiment/stats.py) assume. The hash is SHA-256 of "salt/user_id", not
Python's hash(), so the split is the same in every process and on every machine; a new
salt (a new experiment) reshuffles users independently of earlier experiments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

# Buckets of the hash: an arm's share is a whole number of them (1/10,000 resolution).
HASH_BUCKETS = 10_000


def user_bucket(user_id: str, salt: str) -> int:
    """The user's bucket in [0, HASH_BUCKETS): stable across processes and machines."""
    digest = hashlib.sha256(f"{salt}/{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % HASH_BUCKETS


def assign_arms(user_ids: Sequence[str], shares: Sequence[float], salt: str) -> np.ndarray:
    """The arm index of each user: arm i gets a `shares[i] / sum(shares)` slice of the buckets."""
    weights = np.asarray(shares, dtype=np.float64)
    if weights.ndim != 1 or len(weights) == 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"arm shares {list(shares)}: need one non-negative share per arm, not all 0")
    bounds = np.round(np.cumsum(weights) / weights.sum() * HASH_BUCKETS).astype(np.int64)
    buckets = np.fromiter((user_bucket(u, salt) for u in user_ids), dtype=np.int64, count=len(user_ids))
    return np.searchsorted(bounds, buckets, side="right")
