"""Small images for the report's grids, read through the kit's one loader (`kit.data.images`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.data.images import UnreadableImageError, image_size, load_image, resize

THUMB_SIDE = 200


@dataclass(frozen=True, kw_only=True)
class Thumb:
    """A thumbnail and the size of the image it shows (for scaling boxes)."""

    image: np.ndarray
    original_size: tuple[int, int]  # (width, height) as displayed

    @property
    def scale(self) -> float:
        """Thumbnail pixels per original pixel."""
        return self.image.shape[1] / self.original_size[0]


def placeholder(text_size: tuple[int, int] = (THUMB_SIDE, THUMB_SIDE * 3 // 4)) -> np.ndarray:
    """A grey image standing in for a file that cannot be read."""
    width, height = text_size
    return np.full((height, width, 3), 200, dtype=np.uint8)


def thumbnail(file: Path, *, side: int = THUMB_SIDE) -> Thumb:
    """The image at `file` shrunk so its longer side is at most `side` pixels.

    An unreadable file gives a grey placeholder of size (side, 3/4 side), so one bad file does
    not stop a report.
    """
    try:
        width, height = image_size(Path(file))
        image = load_image(Path(file), draft=(side, side))
    except UnreadableImageError:
        blank = placeholder((side, side * 3 // 4))
        return Thumb(image=blank, original_size=(blank.shape[1], blank.shape[0]))
    factor = min(1.0, side / max(image.shape[:2]))
    if factor < 1.0:
        size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
        image = resize(image, size)
    return Thumb(image=image, original_size=(width, height))


def caption(name: str, *, true: str, predicted: str, p_predicted: float,
            p_true: float) -> str:
    """A tile's caption: file name, true class, predicted class and its probability."""
    short = name if len(name) <= 28 else "..." + name[-25:]
    line = f"true {true} | pred {predicted} {p_predicted:.2f}"
    if true != predicted:
        line += f"\np(true) {p_true:.2f}"
    return f"{short}\n{line}"
