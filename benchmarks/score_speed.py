"""Benchmark `score_rows_per_s`: Kaggle log loss of a 100,000-row, 8-class submission.

Builds a solution (one-hot truth, Public/Private usage) and a submission (rows shuffled, columns
in another order, rows not summing to 1) in memory, then times `kit.scoring.score.score_frame`, which
validates every id, column and value before scoring. Best of 3. Target: under 1 s, i.e. at
least 100,000 rows/s.

    python benchmarks/score_speed.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kit.competition import load_competition  # noqa: E402
from kit.scoring.score import score_frame  # noqa: E402

N_ROWS = 100_000
REPEATS = 3
TARGET_S = 1.0


def _frames(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fisheries-shaped solution and a valid submission for it, in shuffled order."""
    competition = load_competition("fisheries")
    classes = list(competition.classes)
    rng = np.random.default_rng(seed)
    ids = [f"img_{i:06d}.jpg" if i % 2 else f"test_stg2/image_{i:06d}.jpg" for i in range(n_rows)]
    labels = rng.integers(0, len(classes), n_rows)
    truth = np.eye(len(classes))[labels]
    solution = pd.DataFrame({"image": ids, **{c: truth[:, i] for i, c in enumerate(classes)}})
    solution["Usage"] = np.where(rng.random(n_rows) < 0.3, "Public", "Private")
    probs = rng.random((n_rows, len(classes))) + 0.5 * truth
    order = rng.permutation(n_rows)
    submission = pd.DataFrame({"image": [ids[i] for i in order],
                               **{c: probs[order, i] for i, c in enumerate(classes)}})
    return submission[["image", *classes[::-1]]], solution


def score_rows_per_s(n_rows: int = N_ROWS) -> dict:
    """Times scoring `n_rows` rows x 8 classes; returns value, unit, target, met, details."""
    competition = load_competition("fisheries")
    submission, solution = _frames(n_rows)
    times = []
    result = None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = score_frame(submission, solution, competition)
        times.append(time.perf_counter() - start)
    best = min(times)
    return {
        "value": n_rows / best,
        "unit": "rows/s",
        "target": f">= {n_rows / TARGET_S:,.0f} rows/s ({n_rows:,} rows x 8 classes in < "
                  f"{TARGET_S:g} s)",
        "met": best < TARGET_S,
        "details": {"rows": n_rows, "classes": competition.n_classes, "repeats": REPEATS,
                    "seconds": [round(t, 4) for t in times], "best_s": round(best, 4),
                    "overall_log_loss": round(result.overall, 6) if result else None},
    }


if __name__ == "__main__":
    print(json.dumps(score_rows_per_s(), indent=2))
