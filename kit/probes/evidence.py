"""What an earlier `kit probe` of a dataset found that decides how `kit run` folds it.

Read from the probe folder's `probe.json` (`Paths.probe_dir`): whether stratified CV is
optimistic because of groups (and the groups file), whether the test set looks unlike the
training set (adversarial validation, with each test split's AUC), and the near-duplicate
clusters inside train (`clusters.csv`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kit.core.errors import InputError

PROBE_JSON = "probe.json"
CLUSTERS_CSV = "clusters.csv"


@dataclass(frozen=True, kw_only=True)
class FoldEvidence:
    """The probe's findings that bear on the folds."""

    source: Path
    groups_leak: bool
    n_groups: int
    groups_file: Path | None
    test_shift: bool
    split_aucs: dict[str, float]
    within_train_pairs: int
    clusters_file: Path | None

    def shift_text(self) -> str:
        aucs = ", ".join(f"{s} {a:.2f}" for s, a in sorted(self.split_aucs.items()))
        return f"train-vs-test AUC {aucs}" if aucs else "train and test tell apart"


def _split_aucs(adversarial: dict) -> dict[str, float]:
    best: dict[str, float] = {}
    for source in (adversarial.get("sources") or {}).values():
        for split, auc in (source.get("per_split") or {}).items():
            if isinstance(auc, int | float):
                best[split] = max(best.get(split, 0.0), float(auc))
    return best


def read_evidence(folder: Path) -> FoldEvidence | None:
    """The fold evidence in `folder`, or None when no probe ran on this dataset.

    Raises:
        InputError: `probe.json` is not valid JSON (the message names it and the fix).
    """
    file = Path(folder) / PROBE_JSON
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"probe results {file} are not valid JSON: {error}; run "
                         "`python -m kit probe` again to rewrite them") from error
    groups = data.get("groups") or {}
    adversarial = data.get("adversarial") or {}
    duplicates = data.get("duplicates") or {}
    groups_file = Path(groups["groups_file"]) if groups.get("groups_file") else None
    clusters = Path(folder) / CLUSTERS_CSV
    return FoldEvidence(
        source=file, groups_leak=bool(groups.get("leak")),
        n_groups=int(groups.get("n_groups") or 0),
        groups_file=groups_file if groups_file and groups_file.is_file() else None,
        test_shift=bool(adversarial.get("leak")), split_aucs=_split_aucs(adversarial),
        within_train_pairs=int(duplicates.get("within_train") or 0),
        clusters_file=clusters if clusters.is_file() else None)


__all__ = ["CLUSTERS_CSV", "PROBE_JSON", "FoldEvidence", "read_evidence"]
