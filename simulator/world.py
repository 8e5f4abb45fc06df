"""The simulated world: users, videos, their latent tastes and the true task propensities.

The world (fixed for a seed, the same on every simulated day):
- users and videos with latent factors z (dimension `latent_dim`); videos also have
  a Zipf popularity, a quality, a duration and an upload age; users a main device, a
  country, an activity level and a watch history drawn from their tastes;
- per (user, candidate, query, device) a standardized feature vector φ of what the
  model can see or learn (user·candidate and query·candidate affinity through ids,
  history·candidate affinity through watch_history, quality through the id and
  video_log_views, duration, age, activity, a per-user bias through user_id).
  Engagement is g(w_eng·φ) and satisfaction g(w_sat·φ), with g(s) = s + a·Σ sin(α_i s + β_i)
  and w_sat = c·w_eng + sqrt(1-c²)·w_orth (|w_eng| = |w_orth| = 1, w_orth ⟂ w_eng), so
  `task_correlation` c is the cosine of the two tasks' weights as in the synthetic
  data of Ma et al., KDD'18 (MMoE); device and re-watching shift both.
"""

from __future__ import annotations

from watchnext.core import log_schema as schema
from watchnext.simulator.params import SimulatorParams

import numpy as np

# Weights of the features in φ for engagement (normalized to a unit vector):
# user·candidate, query·candidate, history·candidate, quality, log duration,
# log1p age, log1p activity, user bias.
_ENGAGEMENT_WEIGHTS = (1.0, 0.8, 0.6, 0.7, -0.3, -0.3, 0.3, 0.5)
# Per-device shifts of engagement and satisfaction (same order as SimulatorParams.devices).
_DEVICE_ENGAGEMENT = {"mobile": 0.0, "desktop": 0.2, "tablet": 0.1, "tv": 0.4}
_DEVICE_SATISFACTION = {"mobile": 0.0, "desktop": 0.1, "tablet": 0.0, "tv": 0.2}
# Re-watching a video in the history is less engaging and less satisfying.
_REWATCH_ENGAGEMENT, _REWATCH_SATISFACTION = -1.0, -0.5
_NONLINEAR_AMPLITUDE = 0.3
_POPULARITY_EXPONENT = 0.8
_NEIGHBOURS = 50


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function σ(x) = 1 / (1 + e^-x)."""
    return 1.0 / (1.0 + np.exp(-x))


def task_weights(correlation: float, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(w_eng, w_sat): unit vectors whose cosine is `correlation`.

    w_sat = c·w_eng + sqrt(1 - c²)·w_orth with w_orth a random unit vector orthogonal
    to w_eng (Gram-Schmidt), as in Ma et al.'s synthetic data.
    """
    w_eng = np.asarray(_ENGAGEMENT_WEIGHTS[:dim], dtype=np.float64)
    w_eng = w_eng / np.linalg.norm(w_eng)
    w_orth = rng.normal(size=dim)
    w_orth -= w_orth.dot(w_eng) * w_eng
    w_orth /= np.linalg.norm(w_orth)
    w_sat = correlation * w_eng + np.sqrt(max(0.0, 1.0 - correlation**2)) * w_orth
    return w_eng, w_sat


class World:
    """The users, videos and task weights of one simulated world (fixed for a seed)."""

    def __init__(self, p: SimulatorParams):
        self.p = p
        rng = np.random.default_rng(np.random.SeedSequence([p.seed, 0]))
        nu, nv, dim = p.num_users, p.num_videos, p.latent_dim
        self.user_ids = np.array([f"u{i:0{len(str(nu - 1))}d}" for i in range(nu)], dtype=object)
        self.video_ids = np.array([f"v{i:0{len(str(nv - 1))}d}" for i in range(nv)], dtype=object)
        self.z_user = rng.normal(scale=dim**-0.5, size=(nu, dim)) * 1.5
        self.z_video = rng.normal(scale=dim**-0.5, size=(nv, dim)) * 1.5
        self.user_bias = rng.normal(size=nu)
        shares = np.asarray(p.device_shares, dtype=np.float64)
        self.device_share = shares / shares.sum()
        self.user_device = rng.choice(len(p.devices), size=nu, p=self.device_share)
        country_p = 1.0 / np.arange(1, len(p.countries) + 1)
        self.user_country = rng.choice(len(p.countries), size=nu, p=country_p / country_p.sum())
        self.user_activity = np.round(rng.lognormal(np.log(8.0), 1.0, size=nu), 1)
        # Popularity: Zipf over a random order of the videos.
        ranks = rng.permutation(nv)
        pop = (ranks + 1.0) ** -_POPULARITY_EXPONENT
        self.popularity = pop / pop.sum()
        log_pop = np.log(self.popularity)
        self.popularity_z = (log_pop - log_pop.mean()) / log_pop.std()
        self.quality = rng.normal(size=nv)
        self.duration = np.round(np.clip(rng.lognormal(5.3, 0.8, size=nv), 15.0, 4 * 3600.0), 1)
        self.age0 = rng.exponential(300.0, size=nv)
        self.log_views_base = (8.0 + np.log(self.popularity * nv) + 0.6 * self.quality
                               + 0.3 * rng.normal(size=nv))
        self.history, self.history_len = self._histories(rng)
        self.history_ids = [self.video_ids[h[:n]].tolist()
                            for h, n in zip(self.history, self.history_len, strict=True)]
        in_history = np.arange(schema.MAX_HISTORY) < self.history_len[:, None]
        hist_z = self.z_video[self.history] * in_history[..., None]
        self.z_history = hist_z.sum(axis=1) / np.maximum(self.history_len, 1)[:, None]
        self.neighbours = self._neighbours()
        self.w_eng, self.w_sat = task_weights(p.task_correlation, 8, rng)
        self.alpha = rng.normal(size=2)
        self.beta = rng.normal(size=2)
        self.device_eng = np.array([_DEVICE_ENGAGEMENT[d] for d in p.devices])
        self.device_sat = np.array([_DEVICE_SATISFACTION[d] for d in p.devices])
        self._standardize(rng)

    def _histories(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Each user's last MAX_HISTORY watches: Gumbel top-k on taste + popularity (no repeats)."""
        nu, nv = self.p.num_users, self.p.num_videos
        k = min(schema.MAX_HISTORY, nv)
        history = np.zeros((nu, schema.MAX_HISTORY), dtype=np.int64)
        chunk = max(1, 4_000_000 // nv)
        log_pop = np.log(self.popularity)
        for start in range(0, nu, chunk):
            zu = self.z_user[start:start + chunk]
            keys = 2.0 * zu @ self.z_video.T + log_pop + rng.gumbel(size=(len(zu), nv))
            top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
            history[start:start + chunk, :k] = np.take_along_axis(top, order, axis=1)
        length = np.minimum(np.floor(self.user_activity), k).astype(np.int64)
        return history, length

    def _neighbours(self) -> np.ndarray:
        """The _NEIGHBOURS most related videos of each video (by latent dot product)."""
        nv = self.p.num_videos
        k = min(_NEIGHBOURS, nv - 1)
        out = np.zeros((nv, k), dtype=np.int64)
        chunk = max(1, 4_000_000 // nv)
        for start in range(0, nv, chunk):
            sims = self.z_video[start:start + chunk] @ self.z_video.T
            rows = np.arange(len(sims))
            sims[rows, start + rows] = -np.inf
            out[start:start + chunk] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return np.sort(out, axis=1)

    def features(self, user: np.ndarray, query: np.ndarray, cand: np.ndarray, day: int,
                 activity: np.ndarray) -> np.ndarray:
        """φ: the raw (unstandardized) feature vector for (user, query, candidate) arrays."""
        zc = self.z_video[cand]
        return np.stack(np.broadcast_arrays(
            np.einsum("...d,...d->...", self.z_user[user], zc),
            np.einsum("...d,...d->...", self.z_video[query], zc),
            np.einsum("...d,...d->...", self.z_history[user], zc),
            self.quality[cand],
            np.log(self.duration[cand]),
            np.log1p(self.age0[cand] + day),
            np.log1p(activity),
            self.user_bias[user],
        ), axis=-1)

    def _standardize(self, rng: np.random.Generator) -> None:
        """Fix φ's means and scales from a probe sample, so weights act on unit-variance inputs."""
        n = 50000
        user = rng.integers(self.p.num_users, size=n)
        query = self.history[user, 0]
        cand = rng.choice(self.p.num_videos, size=n, p=self.popularity)
        phi = self.features(user, query, cand, 0, self.user_activity[user])
        self.phi_mean = phi.mean(axis=0)
        self.phi_std = phi.std(axis=0) + 1e-9

    def propensities(self, phi: np.ndarray, device: np.ndarray, rewatch: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(engagement, satisfaction) logits from φ, device and re-watch flags."""
        x = (phi - self.phi_mean) / self.phi_std

        def g(s: np.ndarray) -> np.ndarray:
            wiggle = sum(np.sin(a * s + b) for a, b in zip(self.alpha, self.beta, strict=True))
            return s + _NONLINEAR_AMPLITUDE * wiggle

        eng = g(x @ self.w_eng) + self.device_eng[device] + _REWATCH_ENGAGEMENT * rewatch
        sat = g(x @ self.w_sat) + self.device_sat[device] + _REWATCH_SATISFACTION * rewatch
        return eng, sat

