"""Competition declarations: the frozen `Competition` and the parts it is declared with.

A competition folder holds `competition.py`, which defines one module-level `COMPETITION`. It
declares facts only (classes, layout, submission format, default recipe); no training code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.competition.recipe import Recipe
from kit.competition.sources import LABEL_SOURCES, CsvGroups, CsvLabels
from kit.core.errors import DeclarationError, InputError, UnknownNameError

SUBMISSION_KINDS = ("per_class", "positive_class", "label")
METRICS = ("log_loss", "accuracy", "f1_micro", "f1_macro", "roc_auc")
"""Metric names a competition may declare (their functions: `kit.scoring.metric`)."""
LABEL_METRICS = ("accuracy", "f1_micro", "f1_macro")
"""The metrics that score a predicted class, not probabilities."""


@dataclass(frozen=True, kw_only=True)
class TestSplit:
    """One folder of test images and how its file names become submission ids.

    Args:
        name: split name used in the image table (`test_stg1`).
        folder: folder relative to the data root (`test_stg1`).
        id_template: `str.format` template over `name` (file name) and `stem` (name without
            suffix): `"{name}"`, `"test_stg2/{name}"`, `"{stem}"`.
    """

    __test__ = False  # not a pytest test class, despite its name

    name: str
    folder: str
    id_template: str = "{name}"

    def submission_id(self, file_name: str) -> str:
        return self.id_template.format(name=file_name, stem=Path(file_name).stem)


@dataclass(frozen=True, kw_only=True)
class SampleSubmission:
    """A sample submission file and the test splits whose rows it holds."""

    file: str
    splits: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SubmissionFormat:
    """Submission columns.

    `per_class`: `id_column` then one probability column per class, named after the class.
    `positive_class`: `id_column` then `value_column` holding P(`positive_class`).
    `label`: `id_column` then `value_column` holding the predicted class name (`file,species`).
    """

    id_column: str
    kind: str = "per_class"
    value_column: str | None = None
    positive_class: str | None = None
    samples: tuple[SampleSubmission, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in SUBMISSION_KINDS:
            raise InputError(
                f"submission kind must be one of {', '.join(SUBMISSION_KINDS)}; "
                f"received kind={self.kind!r}"
            )
        if self.kind == "positive_class" and not (self.value_column and self.positive_class):
            raise InputError(
                "a positive_class submission needs value_column and positive_class; received "
                f"value_column={self.value_column!r}, positive_class={self.positive_class!r}"
            )
        if self.kind == "label" and not self.value_column:
            raise InputError("a label submission needs value_column, the column of the "
                             "predicted class name (e.g. value_column='species')")
        if not self.samples:
            raise InputError("submission samples must name at least one sample submission file")


@dataclass(frozen=True, kw_only=True)
class Competition:
    """One Kaggle competition, declared in `competitions/<name>/competition.py`.

    Args:
        name: folder name (`fisheries`).
        slug: Kaggle competition slug (`the-nature-conservancy-fisheries-monitoring`).
        title: human title.
        classes: class names in submission column order.
        label_source: `folder` (`train/<CLASS>/*.jpg`), `filename_prefix` (`train/cat.1.jpg`)
            or a `CsvLabels` (`labels.csv` with `id,breed`).
        groups: where each training image's group comes from (a `CsvGroups`: the person, boat
            or camera it shows), or None; `run --folds group` keeps each group in one fold.
        metric: the competition's metric (`METRICS`): `log_loss` (the default), `accuracy`,
            `f1_micro`, `f1_macro` or `roc_auc` (two classes).
        train_folder: folder of training images relative to the data root.
        test_splits: test folders and their submission id rules.
        submission: submission format and sample submission files.
        recipe: default recipe on real data.
        demo_recipe: default recipe with `--demo` (no downloaded weights).
        demo: importable module generating the demo dataset (`kit.demo.fisheries`), or None.
        annotations: folder of bounding-box JSON files relative to the data root, or None.
        image_suffixes: file suffixes read as images.
        losses: custom losses by name, each a function `(y_true, y_pred) -> loss` written with
            `keras.ops`; a recipe names one with `loss=`.
        schedules: custom learning-rate schedules by name, each a function
            `(epoch, lr) -> lr`; a recipe names one with `schedule=`.
        private_share: share of the test rows the private leaderboard scores (the
            competition's leaderboard page says; 0.7 where it says "calculated on about 30 %
            of the test data"); sizes the expected private score's interval.
        private_splits: test splits the private leaderboard scores as a whole (fisheries:
            `("test_stg2",)`); when given, they size the interval instead of `private_share`.
    """

    name: str
    slug: str
    title: str
    classes: tuple[str, ...]
    label_source: str | CsvLabels
    test_splits: tuple[TestSplit, ...]
    submission: SubmissionFormat
    groups: CsvGroups | None = None
    metric: str = "log_loss"
    recipe: Recipe = field(default_factory=Recipe)
    demo_recipe: Recipe | None = None
    demo: str | None = None
    annotations: str | None = None
    train_folder: str = "train"
    image_suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png")
    losses: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    schedules: Mapping[str, Callable[[int, float], float]] = field(default_factory=dict)
    private_share: float = 0.7
    private_splits: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise InputError(
                f"classes must hold at least two distinct names; received classes={self.classes!r}"
            )
        source = self.label_source
        if not isinstance(source, CsvLabels) and source not in LABEL_SOURCES:
            raise InputError(
                f"label_source must be one of {', '.join(LABEL_SOURCES)} or a CsvLabels(...); "
                f"received label_source={self.label_source!r}"
            )
        if self.groups is not None and not isinstance(self.groups, CsvGroups):
            raise DeclarationError(f"groups must be a CsvGroups(...) or None; received "
                                   f"groups={self.groups!r}")
        self._check_metric()
        names = [split.name for split in self.test_splits]
        if not names or len(set(names)) != len(names):
            raise InputError(f"test_splits must have distinct names; received {names!r}")
        self._check_private(names)
        for sample in self.submission.samples:
            unknown = sorted(set(sample.splits) - set(names))
            if unknown:
                raise InputError(
                    f"sample submission {sample.file} names unknown test splits {unknown}; "
                    f"declared splits: {names}"
                )
        for kind, table in (("losses", self.losses), ("schedules", self.schedules)):
            for key, fn in dict(table).items():
                if not isinstance(key, str) or not callable(fn):
                    raise DeclarationError(
                        f"{kind} must map names to functions; received {key!r}: "
                        f"{type(fn).__name__}"
                    )
        sub = self.submission
        if sub.kind == "positive_class" and sub.positive_class not in self.classes:
            raise InputError(
                f"positive_class={sub.positive_class!r} is not one of classes={self.classes!r}"
            )

    def _check_private(self, names: list[str]) -> None:
        share = self.private_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise InputError(f"private_share must be a number in (0, 1], the share of test rows "
                             f"the private leaderboard scores; received {share!r}")
        unknown = sorted(set(self.private_splits) - set(names))
        if unknown:
            raise InputError(f"private_splits names unknown test splits {unknown}; declared "
                             f"splits: {names}")

    def _check_metric(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"metric must be one of {', '.join(METRICS)}; received "
                             f"metric={self.metric!r}")
        if self.metric == "roc_auc" and self.n_classes != 2:
            raise InputError(f"metric roc_auc scores two classes; {self.name} declares "
                             f"{self.n_classes}: {self.classes!r}")
        labels = self.submission.kind == "label"
        if labels and self.metric not in LABEL_METRICS:
            raise InputError(
                f"a label submission (the class name per row) cannot be scored with metric "
                f"{self.metric}, which needs probabilities; choose kind per_class or "
                f"positive_class, or a metric among {', '.join(LABEL_METRICS)}")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def submission_columns(self) -> tuple[str, ...]:
        """Value columns of a submission, in order."""
        if self.submission.kind == "per_class":
            return self.classes
        return (self.submission.value_column,)

    def split(self, name: str) -> TestSplit:
        for split in self.test_splits:
            if split.name == name:
                return split
        known = ", ".join(s.name for s in self.test_splits)
        raise UnknownNameError(f"competition {self.name} has no test split {name!r}; known: {known}")

    def recipe_for(self, *, demo: bool) -> Recipe:
        if demo:
            if self.demo_recipe is None:
                raise InputError(f"competition {self.name} declares no demo recipe")
            return self.demo_recipe
        return self.recipe


