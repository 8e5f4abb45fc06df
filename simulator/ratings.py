"""A small synthetic item-rating log, to try configs/item_ratings.yaml without third-party data.

Each row is one rating: {user_id, item_id, rating, timestamp}, nothing else (no request, no
position, no device, no events log): the shape of MovieLens-style logs. Ratings follow a
low-rank taste model, rating = clip(round(3 + bias_u + bias_i + u·v + noise), 1, 5), so a
model that learns user and item embeddings beats the global mean. Files are laid out as the
ExampleGen reads them: `impressions/span=YYYYMMDD/part-00000.jsonl`, one folder per day.

    python -m watchnext.simulator.ratings OUT_DIR [--days 2] [--ratings-per-day 3000]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os

from watchnext.core.log_schema import IMPRESSIONS_LOG

import numpy as np

FIRST_DAY = datetime.date(2026, 1, 1)


def write_rating_logs(out_dir: str, days: int = 2, ratings_per_day: int = 3000, users: int = 300,
                      items: int = 200, rank: int = 4, seed: int = 0) -> list[str]:
    """Write `days` daily spans of ratings under out_dir; return the span folders written.

    A (user, item) pair is rated at most once per day (the schema's key), so no row of a day
    conflicts with another.
    """
    rng = np.random.default_rng(seed)
    user_f = rng.normal(0, 0.6, (users, rank))
    item_f = rng.normal(0, 0.6, (items, rank))
    user_b = rng.normal(0, 0.5, users)
    item_b = rng.normal(0, 0.7, items)
    folders = []
    for day in range(days):
        date = FIRST_DAY + datetime.timedelta(days=day)
        pairs = rng.choice(users * items, size=min(ratings_per_day, users * items), replace=False)
        u, i = pairs // items, pairs % items
        score = 3 + user_b[u] + item_b[i] + (user_f[u] * item_f[i]).sum(axis=1) + rng.normal(0, 0.5, len(u))
        rating = np.clip(np.round(score), 1, 5)
        midnight = datetime.datetime(date.year, date.month, date.day, tzinfo=datetime.timezone.utc)
        start = int(midnight.timestamp())
        stamps = np.sort(start + rng.integers(0, 86400, len(u)))
        folder = os.path.join(out_dir, IMPRESSIONS_LOG, f"span={date:%Y%m%d}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "part-00000.jsonl"), "w", encoding="utf-8") as f:
            for k in range(len(u)):
                f.write(json.dumps({"user_id": f"u{u[k]}", "item_id": f"i{i[k]}",
                                    "rating": float(rating[k]), "timestamp": int(stamps[k])}) + "\n")
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--ratings-per-day", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for folder in write_rating_logs(args.out_dir, args.days, args.ratings_per_day, seed=args.seed):
        print(folder)


if __name__ == "__main__":
    main()
