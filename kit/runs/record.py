"""`RunRecord`: what a finished `kit run` leaves beside its submission, with one writer and one
reader.

The record is `<submissions>/<competition>/<run-id>.json`. Every module that reads a run (report,
probes, leaderboard, comparison, kernel) reads it through `RunRecord.read`; `kit run` writes it
through `RunRecord.write`. The JSON keys are a contract (scripts read them); `schema_version`
says which shape a file has. Version 1 (records written before the key existed) has the same
keys, so it reads as it is; keys this version does not know are kept in `extra` and written back.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core.atomic import atomic_write_text
from kit.core.errors import InputError, MissingFileError
from kit.runs.layout import RunFolder

SCHEMA_VERSION = 2
REQUIRED = ("competition", "run_id", "run_dir", "config", "predictions")
# The `kit run --json` summary: these keys, in this order, then the optional ones when set.
SUMMARY_KEYS = ("competition", "run_id", "submission", "cv_log_loss", "prior_log_loss",
                "cv_vs_prior", "clip", "clipped_cv_log_loss", "n_train", "n_test",
                "fold_scores", "timings", "head", "mode")
OPTIONAL_SUMMARY_KEYS = ("metric", "cv_score", "bbox_iou", "pseudo_label", "expected_private")
DETAIL_KEYS = ("created", "data", "config", "config_hash", "run_dir", "backbone", "clip_choice",
               "head_inputs", "features", "unreadable", "versions", "predictions")
OPTIONAL_DETAIL_KEYS = ("folds", "training", "calibration", "comparison", "executor")


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One finished run: its scores, configuration and where its files are.

    `config` is the configuration the run folder is keyed by (recipe, input size, TTA variants,
    sample, groups, seeds): kept as the mapping that was hashed, so the hash can be checked.
    """

    competition: str
    run_id: str
    submission: str = ""
    cv_log_loss: float | None = None
    prior_log_loss: float | None = None
    cv_vs_prior: float | None = None
    clip: float | None = None
    clipped_cv_log_loss: float | None = None
    n_train: int | None = None
    n_test: int | None = None
    fold_scores: tuple[Mapping[str, Any], ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    head: str | None = None
    mode: str | None = None
    metric: str | None = None  # the competition's metric (records before it: log loss)
    cv_score: float | None = None  # the out-of-fold predictions' score in that metric
    bbox_iou: float | None = None
    pseudo_label: Mapping[str, Any] | None = None
    # {"value", "low", "high", "metric", "reference", ...}: the private score to expect
    expected_private: Mapping[str, Any] | None = None
    created: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    run_dir: str = ""
    backbone: Mapping[str, Any] = field(default_factory=dict)
    clip_choice: Mapping[str, Any] = field(default_factory=dict)
    head_inputs: Mapping[str, Any] = field(default_factory=dict)
    features: Mapping[str, Any] = field(default_factory=dict)
    unreadable: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    predictions: Mapping[str, str] = field(default_factory=dict)
    folds: Mapping[str, Any] | None = None  # {"kind", "reason", "groups_file"}: how folded
    training: Mapping[str, Any] | None = None  # {"path": "fused" | "per-fold", "reason": ...}
    # {"kind", "value", "fitted_on", "cross_fitted_log_loss"}: applied to the submission
    calibration: Mapping[str, Any] | None = None
    comparison: tuple[Mapping[str, Any], ...] | None = None
    # {"name": "ray", "address", "nodes", "shared", ...}: the cluster that ran it (None: here)
    executor: Mapping[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ reading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "run record") -> RunRecord:
        """A record from its JSON object.

        Raises:
            InputError: A key every run record has is missing (the keys named).
        """
        absent = [key for key in REQUIRED if key not in data]
        if absent:
            raise InputError(
                f"{source} lacks {absent}: it was not written by `python -m kit run` of "
                "this version; re-run the same command to write a complete record"
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        known.setdefault("schema_version", 1)
        known["fold_scores"] = tuple(known.get("fold_scores") or ())
        if known.get("comparison") is not None:
            known["comparison"] = tuple(known["comparison"])
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        """Read and check the record at `path`.

        Raises:
            MissingFileError: `path` does not exist.
            InputError: It is not a run record (not JSON, not an object, keys missing).
        """
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(
                f"run record {path} does not exist; pass the <run-id>.json written beside a "
                "submission (submissions/<competition>/<run-id>.json), or run "
                "`python -m kit report <competition>` for the newest run"
            )
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"run record {path} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise InputError(f"run record {path} must hold a JSON object; received "
                             f"{type(data).__name__}")
        return cls.from_dict(data, source=f"run record {path}")

    # ------------------------------------------------------------ writing
    def summary(self) -> dict[str, Any]:
        """The `kit run --json` keys (the summary printed after a run)."""
        out = {key: _plain(getattr(self, key)) for key in SUMMARY_KEYS}
        for key in OPTIONAL_SUMMARY_KEYS:
            if getattr(self, key) is not None:
                out[key] = _plain(getattr(self, key))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the record file."""
        out = self.summary()
        out.update({key: _plain(getattr(self, key)) for key in DETAIL_KEYS})
        for key in OPTIONAL_DETAIL_KEYS:
            if getattr(self, key) is not None:
                out[key] = _plain(getattr(self, key))
        out.update({k: v for k, v in self.extra.items() if k not in out})
        out["schema_version"] = SCHEMA_VERSION
        return out

    def write(self, path: Path) -> Path:
        """Write the record atomically to `path`; returns `path`."""
        return atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2, default=str))

    def with_comparison(self, rows: list[Mapping[str, Any]]) -> RunRecord:
        return dataclasses.replace(self, comparison=tuple(rows))

    # ------------------------------------------------------------ what readers ask
    @property
    def metric_name(self) -> str:
        """The metric of the run's scores (log loss for records written before metrics)."""
        return self.metric or "log_loss"

    @property
    def cv(self) -> float | None:
        """The out-of-fold score in the run's metric."""
        return self.cv_score if self.cv_score is not None else self.cv_log_loss

    @property
    def recipe(self) -> Mapping[str, Any]:
        return self.config.get("recipe") or {}

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds every fold was trained with (the recipe's seed when only one)."""
        seeds = self.config.get("seeds") or [self.recipe.get("seed", 0)]
        return tuple(int(s) for s in seeds)

    @property
    def input_size(self) -> tuple[int, int] | None:
        size = self.config.get("input_size") or self.recipe.get("input_size")
        return (int(size[0]), int(size[1])) if size else None

    @property
    def tta_variants(self) -> tuple[str, ...]:
        return tuple(self.config.get("tta_variants") or ("plain",))

    @property
    def folder(self) -> RunFolder:
        return RunFolder(Path(self.run_dir))

    @property
    def data_root(self) -> Path | None:
        root = self.data.get("root")
        return Path(root) if root else None

    @property
    def oof_file(self) -> Path:
        return Path(self.predictions.get("oof") or self.folder.oof_csv)

    @property
    def test_file(self) -> Path:
        return Path(self.predictions.get("test") or self.folder.test_csv)


def _plain(value: Any) -> Any:
    """JSON-ready: tuples as lists, mappings as dicts (recursively)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def record_path(submission: Path) -> Path:
    """Where the record of a submission is: beside it, `<run-id>.json`."""
    return Path(submission).with_suffix(".json")


__all__ = ["SCHEMA_VERSION", "RunRecord", "record_path"]
