"""bench/learning_curve: every size trains to convergence, scored on rows early stopping never saw."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

from bench import common
from bench.cli import run_benchmark


def test_request_halves_split_the_eval_rows_by_request():
    keys = [(f"r{i // 10}", f"v{i}") for i in range(1000)]  # 100 requests of 10 candidates
    validation, test = common.request_halves(SimpleNamespace(eval_keys=keys))
    assert validation.shape == test.shape == (1000,)
    assert not (validation & test).any() and (validation | test).all()
    for start in range(0, 1000, 10):  # a request lies wholly in one half
        assert len(set(test[start:start + 10].tolist())) == 1
    assert 350 < test.sum() < 650  # CRC32 parity splits requests about evenly


def test_learning_curve_smoke_trains_both_models_at_every_size(tmp_path):
    out = tmp_path / "reports"
    paths = run_benchmark("learning_curve", "smoke", str(out), str(tmp_path / "work"))
    document = json.loads((out / "learning_curve.json").read_text())
    points = document["figures"]["points"]
    assert [p["impressions"] for p in points] == [400, 800]
    for point in points:
        assert point["test_rows"] + point["validation_rows"] == point["counts"]["eval_examples"]
        assert point["test_rows"] > 0 and point["validation_rows"] > 0
        by_model = {r["model"]: r for r in point["runs"]}
        assert set(by_model) == {"default", "click_only"}
        assert set(by_model["default"]["auc"]) == {"click", "like", "dismiss"}
        assert set(by_model["click_only"]["auc"]) == {"click"}  # it trains no other head
        for run in point["runs"]:
            assert run["stop_reason"] and 0 < run["best_step"] <= run["steps"]
            assert run["best_epoch"] <= run["epochs"]
            for head, auc in run["auc"].items():
                expected = (auc - 0.5) / (point["oracle_auc"][head] - 0.5)
                assert math.isclose(run["oracle_share"][head], expected, rel_tol=1e-9)
    summary = document["figures"]["summary"]
    assert set(summary) == {"400", "800"} and "like" not in summary["800"]["click_only"]
    markdown = (out / "learning_curve.md").read_text()
    assert "| 800 | " in markdown and "click_only" in markdown and "learning_curve_share.png" in markdown
    assert (out / "learning_curve_share.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(paths) == {"json", "md", "plot:share"}
