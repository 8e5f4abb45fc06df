"""The user split: stable, deterministic, about the asked shares, independent across salts."""

from __future__ import annotations

import hashlib

from watchnext.experiment.arms import assign_arms, user_bucket

import numpy as np
import pytest

USERS = [f"u{i:05d}" for i in range(30_000)]


def test_equal_shares_split_users_about_evenly():
    arms = assign_arms(USERS, [1, 1], "experiment-0")
    share = (arms == 0).mean()
    # Binomial(30000, 0.5): sd 0.0029, so ±0.015 is over 5 sd.
    assert abs(share - 0.5) < 0.015
    thirds = np.bincount(assign_arms(USERS, [1, 1, 1], "experiment-0"), minlength=3) / len(USERS)
    np.testing.assert_allclose(thirds, 1 / 3, atol=0.015)
    skewed = np.bincount(assign_arms(USERS, [9, 1], "s"), minlength=2) / len(USERS)
    np.testing.assert_allclose(skewed, [0.9, 0.1], atol=0.01)


def test_a_user_always_lands_in_the_same_arm_and_salts_reshuffle():
    first = assign_arms(USERS[:2000], [1, 1, 1], "experiment-4")
    again = assign_arms(list(reversed(USERS[:2000])), [1, 1, 1], "experiment-4")[::-1]
    np.testing.assert_array_equal(first, again)
    other = assign_arms(USERS[:2000], [1, 1, 1], "experiment-5")
    # Independent salts agree on about a third of users, not all of them.
    assert 0.28 < (first == other).mean() < 0.39
    # The hash is SHA-256 of "salt/user": the same in any process (not Python's salted hash()).
    expected = int.from_bytes(hashlib.sha256(b"s/u1").digest()[:8], "big") % 10_000
    assert user_bucket("u1", "s") == expected


def test_bad_shares_are_refused():
    with pytest.raises(ValueError, match="share"):
        assign_arms(USERS[:3], [0, 0], "s")
    with pytest.raises(ValueError, match="share"):
        assign_arms(USERS[:3], [1, -1], "s")
