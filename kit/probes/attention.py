"""Attention: does a finished run's model look at the fish, or at the boat?

For every annotated training image, the head of the fold that held the image out (so the map
is out of fold) gets a Grad-CAM over the cached plain-variant feature map: the gradient of
log p(true class) with respect to the feature map, averaged over positions, weights the
channels; the ReLU of the weighted sum is the class activation map. Upsampled to the image, the
share of its mass inside the annotation box (:func:`kit.probes.boxes.mass_inside`) is compared
with the box's share of the image area, the share expected by chance.

Verdict per class and overall: the model looks at the fish when the ``1 - alpha`` bootstrap
interval of the mean excess share (share minus chance) lies above zero; otherwise it looks at
the boat, the deck or the clutter (a leak-prone model). TensorFlow is imported only here, and
only when a run is probed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from kit.core.errors import InputError
from kit.probes.boxes import Box, mass_inside
from kit.probes.settings import ProbeSettings
from kit.probes.stats import Interval, bootstrap_mean_interval

__all__ = ["ATTENTION_HEADS", "AttentionResult", "ClassAttention", "attention_summary",
           "class_maps", "grad_cam", "skipped_attention", "unmappable_reason"]

#: Heads whose maps over the cached image features can be drawn: the fcn head's own class
#: activation maps, Grad-CAM of the class output of the others.
ATTENTION_HEADS = ("dense", "bbox", "fcn")
#: The fix an attention leak names: classify the annotated object's crop, not the whole scene.
ATTENTION_FIX = "`run --head crop` (classify the fish's box, not the scene)"

BATCH = 64


@dataclass(frozen=True, kw_only=True)
class ClassAttention:
    """Mean share of CAM mass inside the box for one class, and the chance share."""

    label: str
    n_images: int
    share: float
    chance: float
    excess: Interval | None
    on_fish: bool

    def to_dict(self) -> dict:
        out = asdict(self)
        out["excess"] = self.excess.to_dict() if self.excess else None
        return out


@dataclass(frozen=True, kw_only=True)
class AttentionResult:
    """Attention of a run's model per class, or why it was skipped."""

    status: str  # "measured" or "skipped"
    reason: str
    leak: bool
    run_id: str | None = None
    per_class: tuple[ClassAttention, ...] = ()
    share: float | None = None
    chance: float | None = None
    excess: Interval | None = None
    n_images: int = 0
    n_without_mass: int = 0
    lowest: tuple[tuple[str, float], ...] = ()

    @property
    def fix(self) -> str | None:
        """What to do when the model looks at the background (None otherwise)."""
        return ATTENTION_FIX if self.leak else None

    def verdict(self) -> str:
        if self.status != "measured":
            return f"skipped: {self.reason}"
        where = "the boat, not the fish" if self.leak else "the fish"
        fix = f"; fix: {ATTENTION_FIX}" if self.leak else ""
        return (f"{'LEAK' if self.leak else 'ok'}: the model looks at {where} "
                f"({self.share:.0%} of CAM mass in boxes covering {self.chance:.0%} of the "
                f"image){fix}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["per_class"] = {c.label: c.to_dict() for c in self.per_class}
        out["excess"] = self.excess.to_dict() if self.excess else None
        out["lowest"] = [{"path": p, "share": round(s, 4)} for p, s in self.lowest]
        out["verdict"] = self.verdict()
        out["fix"] = self.fix
        return out


def skipped_attention(reason: str, run_id: str | None = None) -> AttentionResult:
    """An attention result that says why nothing was measured."""
    return AttentionResult(status="skipped", reason=reason, leak=False, run_id=run_id)


def grad_cam(model, features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Grad-CAM maps (n, h, w) of a Keras head over (n, h, w, c) feature maps.

    Args:
        model: A Keras model taking the feature map and returning class probabilities.
        features: (n, h, w, c) float feature maps.
        targets: (n,) class index whose log-probability is explained.

    Raises:
        ValueError: If `features` is not 4-D or `targets` does not match it.
    """
    features = np.asarray(features, np.float32)
    targets = np.asarray(targets, np.int64)
    if features.ndim != 4:
        raise InputError(
            f"Grad-CAM needs spatial feature maps (n, h, w, c); received shape {features.shape}."
        )
    if targets.shape != (len(features),):
        raise InputError(f"targets must have one class per map; received {targets.shape}.")
    from kit.core.tf_runtime import tensorflow

    tf = tensorflow()
    out = []
    for start in range(0, len(features), BATCH):
        x = tf.convert_to_tensor(features[start:start + BATCH])
        t = tf.convert_to_tensor(targets[start:start + BATCH])
        with tf.GradientTape() as tape:
            tape.watch(x)
            probs = model(x, training=False)
            chosen = tf.gather(probs, t, axis=1, batch_dims=1)
            score = tf.math.log(tf.maximum(chosen, 1e-12))
        grads = tape.gradient(score, x)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        out.append(tf.nn.relu(tf.reduce_sum(weights * x, axis=-1)).numpy())
    return np.concatenate(out) if out else np.zeros(features.shape[:3], np.float32)


def unmappable_reason(recipe: dict) -> str | None:
    """Why a run's model has no map over cached image features, or None when it has one."""
    if recipe.get("mode", "features") == "finetune":
        return ("a fine-tuned run trains the base, so no cached feature map matches its model; "
                "probe a features-mode run")
    head = recipe.get("head", "dense")
    if head not in ATTENTION_HEADS:
        why = {"metadata-merge": "also reads the image metadata, so a map over the image alone "
                                 "does not explain it",
               "crop": "classifies crops, not the whole image"}.get(head, "is not mappable")
        return (f"the {head} head {why}; attention maps are drawn for the "
                f"{', '.join(ATTENTION_HEADS)} heads")
    return None


def class_maps(model, features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Maps (n, h, w) of where a head looks for class `targets` over (n, h, w, c) features.

    An fcn head (a layer named ``cam``) gives its own class activation maps: the ReLU of the
    target class's channel before global average pooling. Other heads get Grad-CAM of their
    class output (``probs``; a bbox head's box output is left out).
    """
    from kit.core.tf_runtime import keras
    from kit.models.heads import CAM_LAYER

    k = keras()
    features = np.asarray(features, np.float32)
    targets = np.asarray(targets, np.int64)
    if any(layer.name == CAM_LAYER for layer in model.layers):
        if features.ndim != 4 or targets.shape != (len(features),):
            raise InputError(f"class maps need (n, h, w, c) features and one target per map; "
                             f"received {features.shape} and {targets.shape}.")
        cam_model = k.Model(model.input, model.get_layer(CAM_LAYER).output)
        out = [np.asarray(cam_model(features[i:i + BATCH], training=False))
               for i in range(0, len(features), BATCH)]
        maps = np.concatenate(out) if out else np.zeros((*features.shape[:3], 1), np.float32)
        chosen = np.take_along_axis(maps, targets[:, None, None, None], axis=3)[..., 0]
        return np.maximum(chosen, 0.0).astype(np.float32)
    if isinstance(model.output, dict):
        model = k.Model(model.input, model.output["probs"])
    return grad_cam(model, features, targets)


def attention_summary(
    cams: Sequence[np.ndarray],
    boxes: Sequence[Sequence[Box]],
    sizes: Sequence[tuple[int, int]],
    labels: Sequence[str],
    paths: Sequence[str],
    *,
    run_id: str,
    settings: ProbeSettings | None = None,
) -> AttentionResult:
    """Per-class share of CAM mass inside the boxes vs chance, with intervals (pure).

    Raises:
        ValueError: If the inputs differ in length.
    """
    settings = settings or ProbeSettings()
    n = len(cams)
    if not (len(boxes) == len(sizes) == len(labels) == len(paths) == n):
        raise InputError(
            f"cams, boxes, sizes, labels and paths must align; received {n}, {len(boxes)}, "
            f"{len(sizes)}, {len(labels)} and {len(paths)}."
        )
    rows = []
    for cam, image_boxes, size, label, path in zip(cams, boxes, sizes, labels, paths,
                                                     strict=True):
        share, chance = mass_inside(cam, image_boxes, size)
        rows.append({"label": label, "path": path, "share": share, "chance": chance})
    frame = pd.DataFrame(rows, columns=["label", "path", "share", "chance"])
    valid = frame[frame["share"].notna()]
    if valid.empty:
        return skipped_attention("every class activation map was empty", run_id)

    def interval(part: pd.DataFrame) -> Interval | None:
        if len(part) < 2:
            return None
        return bootstrap_mean_interval((part["share"] - part["chance"]).to_numpy(),
                                       level=settings.level, n_resamples=settings.n_resamples,
                                       seed=settings.seed)

    per_class = []
    for label, part in valid.groupby("label", sort=True):
        excess = interval(part)
        per_class.append(ClassAttention(
            label=str(label), n_images=len(part), share=float(part["share"].mean()),
            chance=float(part["chance"].mean()), excess=excess,
            on_fish=bool(excess is not None and excess.low > 0)))
    overall = interval(valid)
    lowest = valid.sort_values("share", kind="stable").head(5)
    return AttentionResult(
        status="measured", reason="", run_id=run_id,
        leak=not (overall is not None and overall.low > 0), per_class=tuple(per_class),
        share=float(valid["share"].mean()), chance=float(valid["chance"].mean()),
        excess=overall, n_images=len(valid), n_without_mass=int(len(frame) - len(valid)),
        lowest=tuple((str(p), float(s)) for p, s in zip(lowest["path"], lowest["share"],
                                                         strict=True)),
    )
