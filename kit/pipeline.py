"""`kit run`: a competition from images to a validated submission and its run record.

Data flows one way: layout -> image table -> content digests -> cached features (one store per
TTA variant) -> folds -> K-fold x seeds heads -> OOF clip choice -> submission + run record.
Everything expensive is cached (features by content, folds by config hash), so a re-run after a
crash resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kit import __version__
from kit.annotations import box_targets, iou, read_annotations
from kit.atomic import atomic_write_text
from kit.backbones import ResolvedWeights, check_input_size, get_backbone, resolve_weights
from kit.calibration import choose_clip, clip_probs
from kit.competition import Competition, Recipe
from kit.crop import CropImages, crop_cross_validate
from kit.ensemble import BoxGeometry, CVResult, EnsembleData, cross_validate
from kit.features import FeatureKey, FeatureStore, compiled_forward, extract
from kit.folds import assign_folds, load_folds, save_folds
from kit.heads import HeadConfig, head_registry
from kit.images import UnreadableImageError, file_digest
from kit.layout import COLUMNS as TABLE_COLUMNS
from kit.layout import TRAIN, Layout, read_layout, stratified_sample
from kit.metadata import MetadataEncoder
from kit.metrics import log_loss, prior_probs
from kit.paths import Paths
from kit.scoring import probs_to_submission
from kit.submission import write_submission
from kit.train import TrainConfig
from kit.tta import variants as tta_variants

Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """Where the images come from: a folder in the Kaggle layout, generated demo data or not."""

    root: Path
    demo: bool = False
    demo_preset: str = "full"


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    competition: Competition
    data: DataSource
    recipe: Recipe
    paths: Paths
    sample: int | None = None
    groups_file: Path | None = None
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class HeadInputs:
    """What a head needs beyond features: EnsembleData fields, notes for the run record, and
    the (n, 5) box targets (x, y, w, h, has_box) when the head learns boxes."""

    arrays: dict[str, np.ndarray | BoxGeometry]
    notes: dict[str, str]
    boxes: np.ndarray | None = None


class _ArrayStore:
    """Decoded images by digest, read like a FeatureStore (`get`)."""

    def __init__(self, rows: dict[str, np.ndarray]) -> None:
        self._rows = rows

    def get(self, digests: list[str]) -> np.ndarray:
        return np.stack([self._rows[d] for d in digests])


def _sizes(table: pd.DataFrame) -> list[tuple[int, int]]:
    return list(zip(table["width"].astype(int), table["height"].astype(int), strict=True))


def mean_box_iou(predicted: np.ndarray, targets: np.ndarray) -> float:
    """Mean IoU of predicted boxes against the (n, 5) targets, over the rows that have a box."""
    mask = targets[:, 4] > 0
    if not mask.any():
        raise ValueError("no training image has a box: the mean IoU is undefined")
    return float(iou(predicted[mask], targets[mask, :4]).mean())


@dataclass(frozen=True, kw_only=True)
class RunResult:
    run_id: str
    submission: Path
    record: Path
    summary: dict
    train_labels: np.ndarray  # class indexes of the training images the heads learned from


def _digests(table: pd.DataFrame) -> list[str]:
    out = []
    for file in tqdm(table["file"], desc="hashing", unit="img", disable=None, leave=False):
        try:
            out.append(file_digest(Path(file)))
        except UnreadableImageError:
            out.append(f"missing:{file}")
    return out


def _read_groups(path: Path, train: pd.DataFrame) -> np.ndarray:
    try:
        frame = pd.read_csv(path, dtype={"path": str})
    except FileNotFoundError as error:
        raise ValueError(f"groups file {path} does not exist") from error
    missing_cols = {"path", "group"} - set(frame.columns)
    if missing_cols:
        raise ValueError(
            f"groups file {path} needs columns path,group; missing {sorted(missing_cols)}"
        )
    mapping = dict(zip(frame["path"].astype(str), frame["group"].astype(str), strict=True))
    absent = [p for p in train["path"] if p not in mapping]
    if absent:
        raise ValueError(
            f"groups file {path} has no group for {len(absent)} training images "
            f"(e.g. {absent[:3]}); paths are relative to the data root"
        )
    return np.array([mapping[p] for p in train["path"]])


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - any metadata failure means "unknown"
        return "unknown"


def versions() -> dict[str, str]:
    return {"kit": __version__, "python": platform.python_version(),
            **{m: _version(m) for m in ("tensorflow", "keras", "numpy", "pandas",
                                         "scikit-learn", "opencv-python-headless", "pillow")}}


def check_recipe(recipe: Recipe, competition: Competition | None = None) -> None:
    """Reject recipe combinations that cannot run, before any data work.

    Raises:
        KeyError: an unknown backbone, head, loss or schedule (close matches listed).
        ValueError: an input size the backbone cannot take (the option named);
            `weights="demo"` (the demo base's pretrained weights) with another backbone;
            a box head on a competition without bounding boxes; a mode a head does not support.
    """
    from kit.losses import check_loss
    from kit.schedules import check_schedule

    backbone = get_backbone(recipe.backbone)
    spec = head_registry().get(recipe.head)
    for option, size in (("--input-size", recipe.input_size),
                         ("--fcn-input-size", recipe.fcn_input_size),
                         ("--box-input-size", recipe.box_input_size)):
        if size is not None:
            try:
                check_input_size(backbone, tuple(size))
            except (TypeError, ValueError) as error:
                raise ValueError(f"{option} {size!r}: {error}") from error
    if recipe.weights == "demo" and recipe.backbone != "demo_cnn":
        raise ValueError(
            f"--weights demo is only for --backbone demo_cnn; received --backbone "
            f"{recipe.backbone}. Pass --weights imagenet, none or PATH with it."
        )
    check_loss(recipe.loss, extra=competition.losses if competition else None)
    check_schedule(recipe.schedule, extra=competition.schedules if competition else None)
    if competition is not None and spec.boxes and competition.annotations is None:
        raise ValueError(
            f"the {spec.name} head needs bounding boxes, and competition {competition.name} has "
            "no bounding-box annotations (its competition.py declares no `annotations` folder); "
            "choose --head dense, metadata-merge or fcn"
        )
    if spec.meta:
        check_metadata_columns(recipe.metadata)
    if recipe.head == "crop" and recipe.pseudo_label is not None:
        raise ValueError("--pseudo-label works with the heads trained on whole images; the "
                         "crop head does not take it (drop --pseudo-label or pick another head)")
    if recipe.mode == "finetune" and recipe.pseudo_label is not None:
        raise ValueError("--pseudo-label works with heads on cached features; --mode finetune "
                         "does not take it (drop one of the two)")
    if recipe.mode == "finetune" and recipe.head not in FINETUNE_HEADS:
        raise ValueError(
            f"--mode finetune trains the base with a {' or '.join(FINETUNE_HEADS)} head; "
            f"received --head {recipe.head}"
        )


FINETUNE_HEADS = ("dense",)


def check_metadata_columns(columns: tuple[str, ...]) -> None:
    """The metadata-merge head's columns must be image-table columns (or `size`), not the label.

    Raises:
        KeyError: A column the image table does not have (the known ones listed).
        ValueError: `label` (the target itself) or no column at all.
    """
    if not columns:
        raise ValueError("--metadata needs at least one column, such as size")
    if "label" in columns:
        raise ValueError("--metadata cannot use 'label': it is the target, and unknown for test "
                         "images; choose from size, width, height, split")
    unknown = [c for c in columns if c != "size" and c not in TABLE_COLUMNS]
    if unknown:
        raise KeyError(f"metadata columns {unknown} are not in the image table; choose from "
                       f"size, {', '.join(c for c in TABLE_COLUMNS if c != 'label')}")


class Run:
    """One `kit run`; each method is one stage of the pipeline."""

    def __init__(self, options: RunOptions, *, log: Log = print) -> None:
        self.options = options
        self.competition = options.competition
        self.recipe = options.recipe
        self.log = log
        check_recipe(self.recipe, self.competition)
        self.timings: dict[str, float] = {}
        self.backbone = get_backbone(self.recipe.backbone)
        self.head_spec = head_registry().get(self.recipe.head)
        recipe_size = check_input_size(
            self.backbone, tuple(self.recipe.input_size or self.backbone.input_size))
        size = {"recipe": recipe_size, "fcn": self.recipe.fcn_input_size,
                "box": self.recipe.box_input_size or recipe_size}[self.head_spec.input_size]
        self.input_size = check_input_size(self.backbone, tuple(size))
        self.crop_input_size = recipe_size  # the crop head classifies its crops at this size
        self.variants = tta_variants(self.recipe.tta)
        # Box heads also train on these views of the training images (kit.tta.map_boxes).
        self.box_views = (tta_variants(self.recipe.box_variants)
                          if self.head_spec.boxes and self.recipe.mode == "features" else ())
        self.head_config = HeadConfig(pooling=self.recipe.pooling, hidden=self.recipe.hidden,
                                      dropout=self.recipe.dropout, input_size=self.input_size)
        self.head_builder = self.head_spec
        self.train_config = TrainConfig(
            epochs=self.recipe.epochs, batch_size=self.recipe.batch_size,
            learning_rate=self.recipe.learning_rate, patience=self.recipe.patience,
            seed=self.recipe.seed, loss=self.recipe.loss, schedule=self.recipe.schedule,
            losses=self.competition.losses, schedules=self.competition.schedules,
            class_loss_weight=self.recipe.class_loss_weight,
            box_loss_weight=self.recipe.box_loss_weight)
        self.seeds = options.seeds or (self.recipe.seed,)

    # ---------------------------------------------------------------- stages
    def _timed(self, name: str, start: float) -> None:
        self.timings[name] = round(time.perf_counter() - start, 3)

    def read_data(self) -> tuple[Layout, pd.DataFrame, pd.DataFrame]:
        start = time.perf_counter()
        layout = read_layout(self.competition, self.options.data.root)
        train = layout.train
        if self.options.sample is not None:
            train = stratified_sample(train, self.options.sample, seed=self.recipe.seed)
        test = layout.test
        self._timed("read_data", start)
        return layout, train.reset_index(drop=True), test.reset_index(drop=True)

    def resolve_weights(self) -> ResolvedWeights:
        weights = self.recipe.weights
        if weights == "demo":
            from kit.demo.pretrain import ensure_demo_weights

            start = time.perf_counter()
            path = ensure_demo_weights(self.competition, self.options.paths,
                                       preset=self.options.data.demo_preset, log=self.log)
            self._timed("pretrain_demo_base", start)
            weights = str(path)
        return resolve_weights(self.backbone, weights, seed=self.recipe.seed)

    def features(self, weights: ResolvedWeights, items: list[tuple[str, str]],
                 train_items: list[tuple[str, str]]
                 ) -> tuple[dict[str, FeatureStore], dict[str, str], dict]:
        """Extract (or reuse) features of every item for every TTA variant, and of the
        training items (`train_items`) for the box heads' other training views."""
        start = time.perf_counter()
        jobs = {v: items for v in self.variants}
        for view in self.box_views:
            jobs.setdefault(view, train_items)
        stores = {
            v: FeatureStore(self.options.paths.features(), FeatureKey(
                backbone=self.backbone.name, weights=weights.identity, input_size=self.input_size,
                preprocess=self.backbone.preprocess, variant=v))
            for v in jobs
        }
        todo = {v: s.missing([d for d, _ in jobs[v]]) for v, s in stores.items()}
        unreadable: dict[str, str] = {}
        stats = {"computed": 0, "reused": 0}
        if any(todo.values()):
            from kit.backbones import build_model, preprocess_function

            model = build_model(self.backbone, weights, self.input_size)
            forward = compiled_forward(model, preprocess_function(self.backbone), self.input_size)
            for variant, store in stores.items():
                wanted = set(todo[variant])
                pending = [(d, f) for d, f in jobs[variant] if d in wanted]
                with tqdm(total=len(pending), desc=f"features {variant}", unit="img",
                          disable=None, leave=False) as bar:
                    report = extract(store, pending, forward=forward,
                                     batch_size=self.recipe.batch_size, progress=bar.update)
                stats["computed"] += report.computed
                unreadable.update(dict(report.unreadable))
        stats["reused"] = sum(len(jobs[v]) - len(t) for v, t in todo.items())
        self._timed("features", start)
        return stores, unreadable, stats

    def folds(self, run_dir: Path, train: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
        # The run folder is keyed by the config hash (fold count, seed, groups file content and
        # data), so a saved folds.csv belongs to this exact configuration; ids are re-checked.
        path = run_dir / "folds.csv"
        if path.is_file():
            saved = load_folds(path)
            if (list(saved["id"].astype(str)) == list(train["id"])
                    and saved["fold"].nunique() == self.recipe.folds):
                return saved["fold"].to_numpy()
        groups = (_read_groups(self.options.groups_file, train)
                  if self.options.groups_file else None)
        folds = assign_folds(labels, n_splits=self.recipe.folds, seed=self.recipe.seed,
                             groups=groups)
        save_folds(path, list(train["id"]), folds, groups=groups)
        return folds

    def images(self, items: list[tuple[str, str]]
               ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, str], dict]:
        """--mode finetune: decode every image at the input size, per TTA variant (no cache:
        the base trains, so its features change every step)."""
        from kit.finetune import load_images

        start = time.perf_counter()
        unique = list(dict(items).items())
        loaded: dict[str, dict[str, np.ndarray]] = {}
        unreadable: dict[str, str] = {}
        for variant in self.variants:
            decoded = load_images(unique, size=self.input_size, variant=variant,
                                  batch_size=self.recipe.batch_size)
            loaded[variant] = {d: img for (d, _), img, ok in
                               zip(unique, decoded.images, decoded.ok, strict=True) if ok}
            unreadable.update({f: "cannot be decoded" for (_, f), ok in
                               zip(unique, decoded.ok, strict=True) if not ok})
        self._timed("images", start)
        return loaded, unreadable, {"computed": 0, "reused": 0, "decoded": len(unique)}

    def finetune_cv(self, data: EnsembleData, folds: np.ndarray, run_dir: Path,
                    weights: ResolvedWeights) -> CVResult:
        """--mode finetune: every (seed, fold) trains the base's last blocks and the head on
        images, resumable mid-fold (kit.finetune)."""
        from kit.ensemble import fold_tasks, gather
        from kit.finetune import FinetuneConfig, build_finetune_model, run_finetune_fold
        from kit.losses import resolve_loss
        from kit.schedules import lr_callbacks

        config = FinetuneConfig(blocks=self.recipe.finetune_blocks,
                                base_lr_factor=self.recipe.base_lr_factor,
                                augment=tuple(self.recipe.augment))
        results = []
        tasks = fold_tasks(folds, self.seeds, run_dir)
        for task in tqdm(tasks, desc="fine-tune folds", unit="fold", disable=None, leave=False):
            seed = task.seed * 1000 + task.fold

            def build(seed: int = seed):
                return build_finetune_model(
                    backbone=self.backbone, weights=weights, input_size=self.input_size,
                    head_builder=self.head_builder, head_config=self.head_config,
                    n_classes=self.competition.n_classes, config=config, seed=seed)

            results.append(run_finetune_fold(
                task, images=data.x_train, y=data.y_train, test_images=data.x_test,
                variants=self.variants, n_classes=self.competition.n_classes, build=build,
                train=self.train_config, config=config,
                loss=resolve_loss(self.recipe.loss, extra=self.competition.losses),
                lr_callbacks=lr_callbacks(self.recipe.schedule, patience=self.recipe.patience,
                                          extra=self.competition.schedules),
                log=self.log))
        return gather(results, data.y_train, n_classes=data.n_classes, n_seeds=len(self.seeds))

    def crop_cv(self, data: EnsembleData, folds: np.ndarray, run_dir: Path,
                weights: ResolvedWeights, images: CropImages) -> CVResult:
        """bbox head -> crops of the full-resolution images -> dense head (kit.crop)."""
        size = self.crop_input_size
        store = FeatureStore(self.options.paths.features(), FeatureKey(
            backbone=self.backbone.name, weights=weights.identity, input_size=size,
            preprocess=self.backbone.preprocess, variant="crop"))

        def forward():
            from kit.backbones import build_model, preprocess_function

            model = build_model(self.backbone, weights, size)
            return compiled_forward(model, preprocess_function(self.backbone), size)

        return crop_cross_validate(
            data, folds, seeds=self.seeds, run_dir=run_dir, head=self.head_config,
            train=self.train_config, images=images, input_size=self.input_size, store=store,
            forward=forward, batch_size=self.recipe.batch_size, log=self.log)

    def head_inputs(self, layout: Layout, train: pd.DataFrame, test: pd.DataFrame
                    ) -> HeadInputs:
        """The metadata and box targets the head needs beyond its features (pure data work)."""
        arrays: dict[str, np.ndarray] = {}
        notes: dict[str, str] = {}
        boxes = None
        if self.head_spec.meta:
            encoder = MetadataEncoder.fit(train, self.recipe.metadata)
            arrays["meta_train"] = encoder.transform(train)
            arrays["meta_test"] = encoder.transform(test)
            unseen = int((arrays["meta_test"].sum(axis=1) == 0).sum()) if len(test) else 0
            notes["metadata"] = encoder.describe()
            self.log(f"metadata-merge: {encoder.describe()}; {unseen} of {len(test)} test images "
                     "have a value never seen in train (encoded as zeros)")
        if self.head_spec.boxes:
            annotations = read_annotations(layout.root / self.competition.annotations,
                                           self.competition.classes, list(train["path"]))
            notes["annotations"] = annotations.describe()
            self.log(annotations.describe())
            if not annotations.boxes:
                raise ValueError(
                    f"the {self.head_spec.name} head needs bounding boxes and "
                    f"{layout.root / self.competition.annotations} holds none for these "
                    "training images; add the community <class>_labels.json files there")
            coords, mask = box_targets(annotations.largest(), list(train["path"]), _sizes(train),
                                       self.input_size)
            boxes = np.concatenate([coords, mask[:, None].astype(np.float32)], axis=1)
            arrays["boxes_train"] = boxes
            arrays["box_geometry"] = BoxGeometry(
                input_size=self.input_size, views=self.box_views or self.variants[:1],
                train_sizes=np.array(_sizes(train), dtype=np.int64).reshape(-1, 2),
                test_sizes=np.array(_sizes(test), dtype=np.int64).reshape(-1, 2))
        return HeadInputs(arrays=arrays, notes=notes, boxes=boxes)

    def save_predictions(self, run_dir: Path, train: pd.DataFrame, labels: np.ndarray,
                         cv: CVResult, test: pd.DataFrame, test_probs: np.ndarray
                         ) -> dict[str, Path]:
        """`oof.csv` (path, label, out-of-fold probabilities) and `test.csv` (id, path, split, clipped
        probabilities) in the run folder, for reports and probes."""
        classes = list(self.competition.classes)
        oof = pd.DataFrame(cv.oof, columns=classes)
        oof.insert(0, "label", [classes[i] for i in labels])
        oof.insert(0, "path", list(train["path"]))
        tests = pd.DataFrame(test_probs, columns=classes)
        tests.insert(0, "split", list(test["split"]))
        tests.insert(0, "path", list(test["path"]))
        tests.insert(0, "id", list(test["id"]))
        out = {"oof": run_dir / "oof.csv", "test": run_dir / "test.csv"}
        atomic_write_text(out["oof"], oof.to_csv(index=False))
        atomic_write_text(out["test"], tests.to_csv(index=False))
        return out

    # ---------------------------------------------------------------- whole run
    def config(self, weights: ResolvedWeights) -> dict:
        return {
            "recipe": dataclasses.asdict(self.recipe),
            "weights_identity": weights.identity,
            "input_size": list(self.input_size),
            "tta_variants": list(self.variants),
            "sample": self.options.sample,
            "groups_file": str(self.options.groups_file) if self.options.groups_file else None,
            "groups_digest": (file_digest(self.options.groups_file)
                              if self.options.groups_file and self.options.groups_file.is_file()
                              else None),
            "seeds": list(self.seeds),
        }

    def execute(self) -> RunResult:
        total_start = time.perf_counter()
        competition, paths = self.competition, self.options.paths
        layout, train, test = self.read_data()
        weights = self.resolve_weights()
        self.log(f"{competition.name}: {len(train)} train and {len(test)} test images from "
                 f"{layout.root}; backbone {self.backbone.name} "
                 f"{self.input_size[0]}x{self.input_size[1]}, {self.recipe.folds} folds, "
                 f"TTA {len(self.variants)}"
                 + (f"; box views {', '.join(self.box_views)}" if self.box_views else ""))
        start = time.perf_counter()
        train_digests, test_digests = _digests(train), _digests(test)
        self._timed("hash", start)
        items = list(zip(train_digests + test_digests,
                         list(train["file"]) + list(test["file"]), strict=True))
        if self.recipe.mode == "finetune":
            loaded, unreadable, feature_stats = self.images(items)
            present = {d for d, _ in items if all(d in v for v in loaded.values())}
        else:
            train_items = items[:len(train_digests)]
            stores, unreadable, feature_stats = self.features(weights, items, train_items)
            present = {d for d, _ in items if all(d in stores[v] for v in self.variants)}
            present -= {d for d, _ in train_items
                        if not all(d in stores[v] for v in self.box_views)}
        for digest, file in items:
            if digest not in present and file not in unreadable:
                unreadable[file] = "no features"
        train_ok = np.array([d in present for d in train_digests], dtype=bool)
        test_ok = np.array([d in present for d in test_digests], dtype=bool)
        bad_train = [f for f, ok in zip(train["file"], train_ok, strict=True) if not ok]
        bad_test = [f for f, ok in zip(test["file"], test_ok, strict=True) if not ok]
        for file in bad_train:
            self.log(f"skipping unreadable training image {file}: {unreadable.get(file)}")
        for file in bad_test:
            self.log(f"unreadable test image {file} ({unreadable.get(file)}): "
                     "predicting the class prior for it")
        train_used = train[train_ok].reset_index(drop=True)
        labels = np.array([competition.classes.index(c) for c in train_used["label"]])
        used_train_digests = [d for d, ok in zip(train_digests, train_ok, strict=True) if ok]
        used_test_digests = [d for d, ok in zip(test_digests, test_ok, strict=True) if ok]

        config = self.config(weights)
        data_key = hashlib.sha1("\n".join(
            f"{p}\t{d}" for p, d in zip(list(train_used["id"]) + list(test["id"]),
                                          used_train_digests + test_digests, strict=True)
        ).encode()).hexdigest()
        config_hash = hashlib.sha1(json.dumps(
            {"competition": competition.name, "data": data_key, **config}, sort_keys=True
        ).encode()).hexdigest()[:16]
        run_dir = paths.run_dir(competition.name, config_hash)
        run_dir.mkdir(parents=True, exist_ok=True)

        start = time.perf_counter()
        if self.recipe.mode == "finetune":
            stores = {v: _ArrayStore(rows) for v, rows in loaded.items()}
        data = EnsembleData(
            variants=self.variants,
            x_train={v: s.get(used_train_digests) for v, s in stores.items()},
            y_train=labels,
            x_test={v: (stores[v].get(used_test_digests) if used_test_digests else
                        np.zeros((0,), np.float32)) for v in self.variants},
            n_classes=competition.n_classes,
        )
        extras = self.head_inputs(layout, train_used, test[test_ok].reset_index(drop=True))
        data = dataclasses.replace(data, **extras.arrays)
        self._timed("load_features", start)
        start = time.perf_counter()
        folds = self.folds(run_dir, train_used, labels)
        if self.recipe.mode == "finetune":
            cv = self.finetune_cv(data, folds, run_dir, weights)
        elif self.recipe.head == "crop":
            test_used = test[test_ok].reset_index(drop=True)
            cv: CVResult = self.crop_cv(data, folds, run_dir, weights, CropImages(
                train_digests=used_train_digests, train_files=list(train_used["file"]),
                train_sizes=_sizes(train_used), test_digests=used_test_digests,
                test_files=list(test_used["file"]), test_sizes=_sizes(test_used)))
        else:
            cv = cross_validate(
                data, folds, seeds=self.seeds, run_dir=run_dir, build=self.head_builder,
                head=self.head_config, train=self.train_config,
                pseudo_label=self.recipe.pseudo_label,
            )
        self._timed("folds", start)
        bbox_iou = None
        if cv.box_oof is not None and extras.boxes is not None:
            bbox_iou = mean_box_iou(cv.box_oof, extras.boxes)
            self.log(f"bbox: mean IoU {bbox_iou:.3f} of out-of-fold boxes on "
                     f"{int(extras.boxes[:, 4].sum())} boxed training images")

        start = time.perf_counter()
        prior = prior_probs(labels, competition.n_classes)
        prior_oof = log_loss(labels, np.tile(prior, (len(labels), 1)))
        clip = choose_clip(labels, cv.oof)
        test_probs = np.tile(prior, (len(test), 1))
        if test_ok.any():
            test_probs[test_ok] = cv.test
        test_probs = clip_probs(test_probs, clip.clip)
        run_id = f"{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}-{config_hash[:8]}"
        out_dir = paths.submission_dir(competition.name)
        submission_path = out_dir / f"{run_id}.csv"
        frame = probs_to_submission(test_probs, list(test["id"]), competition)
        write_submission(frame, submission_path, sample=layout.sample,
                         id_column=competition.submission.id_column)
        self._timed("submission", start)
        self.timings["total"] = round(time.perf_counter() - total_start, 3)

        summary = {
            "competition": competition.name,
            "run_id": run_id,
            "submission": str(submission_path),
            "cv_log_loss": cv.cv_log_loss,
            "prior_log_loss": prior_oof,
            "cv_vs_prior": cv.cv_log_loss / prior_oof if prior_oof > 0 else None,
            "clip": clip.clip,
            "clipped_cv_log_loss": clip.log_loss,
            "n_train": int(len(train_used)),
            "n_test": int(len(test)),
            "fold_scores": [f.summary() for f in cv.folds],
            "timings": self.timings,
            "head": self.recipe.head,
            "mode": self.recipe.mode,
        }
        if bbox_iou is not None:
            summary["bbox_iou"] = bbox_iou
        if self.recipe.pseudo_label is not None:
            summary["pseudo_label"] = {
                "threshold": self.recipe.pseudo_label,
                "n_pseudo_per_fold": [f.n_pseudo for f in cv.folds]}
        record = {
            **summary,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data": {"root": str(layout.root), "demo": self.options.data.demo,
                     "sample_submission": str(layout.sample_file),
                     "test_splits": list(layout.test_splits)},
            "config": config,
            "config_hash": config_hash,
            "run_dir": str(run_dir),
            "backbone": {"name": self.backbone.name, "preprocess": self.backbone.preprocess,
                         "weights": weights.identity},
            "clip_choice": clip.to_dict(),
            "head_inputs": extras.notes,
            "features": feature_stats,
            "unreadable": {"train": [{"file": f, "reason": unreadable.get(f)} for f in bad_train],
                           "test": [{"file": f, "reason": unreadable.get(f)} for f in bad_test]},
            "versions": versions(),
        }
        predictions = self.save_predictions(run_dir, train_used, labels, cv, test, test_probs)
        record["predictions"] = {k: str(v) for k, v in predictions.items()}
        record_path = out_dir / f"{run_id}.json"
        atomic_write_text(record_path, json.dumps(record, indent=2, default=str))
        return RunResult(run_id=run_id, submission=submission_path, record=record_path,
                         summary={**summary, "record": str(record_path)}, train_labels=labels)


def run(options: RunOptions, *, log: Log = print) -> RunResult:
    """Run the whole pipeline; see the module docstring."""
    return Run(options, log=log).execute()


__all__ = ["DataSource", "RunOptions", "RunResult", "run", "TRAIN"]
