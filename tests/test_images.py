"""Tests for kit.data.images: every kind of file is built in tmp_path with Pillow and numpy."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kit.data.images import UnreadableImageError, file_digest, image_size, load_image, resize


def _gradient(width: int, height: int) -> np.ndarray:
    """A deterministic RGB test pattern (HxWx3 uint8) with no symmetry."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + 2 * y) % 256], axis=2
    ).astype(np.uint8)


def _noisy_jpeg(path: Path) -> bytes:
    """A 128x96 noisy JPEG: its scan data dwarfs its header, so half the bytes keep the header."""
    noise = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    return _save(Image.fromarray(noise), path, "JPEG", quality=90).read_bytes()


def _save(img: Image.Image, path: Path, fmt: str, **kwargs: object) -> Path:
    img.save(path, format=fmt, **kwargs)
    return path


def _check_rgb(array: np.ndarray, height: int, width: int) -> None:
    assert array.shape == (height, width, 3)
    assert array.dtype == np.uint8
    assert array.flags["C_CONTIGUOUS"]


# -- formats and modes -----------------------------------------------------------------------


def test_rgb_png_is_exact(tmp_path: Path) -> None:
    pixels = _gradient(7, 5)
    path = _save(Image.fromarray(pixels), tmp_path / "a.png", "PNG")
    loaded = load_image(path)
    _check_rgb(loaded, 5, 7)
    np.testing.assert_array_equal(loaded, pixels)


def test_rgb_jpeg(tmp_path: Path) -> None:
    pixels = _gradient(16, 8)
    path = _save(Image.fromarray(pixels), tmp_path / "a.jpg", "JPEG", quality=95)
    loaded = load_image(path)
    _check_rgb(loaded, 8, 16)
    assert np.abs(loaded.astype(int) - pixels).mean() < 8


def test_grayscale_is_replicated_to_three_channels(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = _save(Image.fromarray(gray, mode="L"), tmp_path / "g.png", "PNG")
    loaded = load_image(path)
    _check_rgb(loaded, 3, 4)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[:, :, channel], gray)


def test_rgba_alpha_is_dropped_not_composited(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = [200, 100, 50]
    rgba[..., 3] = [[0, 128, 255], [255, 0, 10]]
    path = _save(Image.fromarray(rgba, mode="RGBA"), tmp_path / "rgba.png", "PNG")
    loaded = load_image(path)
    _check_rgb(loaded, 2, 3)
    assert (loaded == [200, 100, 50]).all()


def test_grayscale_alpha_drops_alpha(tmp_path: Path) -> None:
    path = _save(Image.new("LA", (3, 2), (90, 0)), tmp_path / "la.png", "PNG")
    loaded = load_image(path)
    _check_rgb(loaded, 2, 3)
    assert (loaded == 90).all()


def test_sixteen_bit_png_keeps_the_high_byte(tmp_path: Path) -> None:
    values = np.array([[0, 255, 256, 1000], [32768, 40000, 65280, 65535]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    path = _save(img, tmp_path / "deep.png", "PNG")
    loaded = load_image(path)
    _check_rgb(loaded, 2, 4)
    expected = (values >> 8).astype(np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[:, :, channel], expected)


def test_palette_image(tmp_path: Path) -> None:
    pixels = _gradient(6, 4)
    img = Image.fromarray(pixels).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    path = _save(img, tmp_path / "p.png", "PNG")
    loaded = load_image(path)
    _check_rgb(loaded, 4, 6)
    np.testing.assert_array_equal(loaded, np.asarray(img.convert("RGB")))


def test_palette_with_transparency_drops_alpha(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    img = Image.new("P", (2, 2), 1)
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    path = _save(img, tmp_path / "pt.png", "PNG", transparency=1)
    loaded = load_image(path)
    _check_rgb(loaded, 2, 2)
    assert (loaded == [10, 20, 30]).all()
    assert not [w for w in recwarn if "Palette" in str(w.message)]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", "JPEG")
    with Image.open(path) as img:
        assert img.mode == "CMYK"
    loaded = load_image(path)
    _check_rgb(loaded, 8, 8)
    assert loaded[..., 0].min() > 230  # red
    assert loaded[..., 1:].max() < 25


def test_png_named_jpg_is_detected_by_content(tmp_path: Path) -> None:
    pixels = _gradient(5, 3)
    path = _save(Image.fromarray(pixels), tmp_path / "liar.jpg", "PNG")
    np.testing.assert_array_equal(load_image(path), pixels)
    assert image_size(path) == (5, 3)


def test_accepts_str_path(tmp_path: Path) -> None:
    path = _save(Image.fromarray(_gradient(3, 2)), tmp_path / "s.png", "PNG")
    _check_rgb(load_image(str(path)), 2, 3)  # type: ignore[arg-type]


# -- EXIF orientation ------------------------------------------------------------------------


def _oriented_jpeg(path: Path, width: int, height: int, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(Image.fromarray(_gradient(width, height)), path, "JPEG", quality=95, exif=exif)


def test_exif_orientation_6_is_transposed(tmp_path: Path) -> None:
    path = _oriented_jpeg(tmp_path / "rot.jpg", 16, 8, 6)
    loaded = load_image(path)
    _check_rgb(loaded, 16, 8)  # stored 16 wide x 8 high, displayed 8 wide x 16 high
    assert image_size(path) == (8, 16) == (loaded.shape[1], loaded.shape[0])
    # Orientation 6 = rotate 90 degrees clockwise for display.
    with Image.open(path) as img:
        stored = load_image(_save(img.copy(), tmp_path / "plain.png", "PNG"))  # EXIF ignored
    expected = np.rot90(stored, k=-1)
    assert np.abs(loaded.astype(int) - expected.astype(int)).mean() < 2


@pytest.mark.parametrize(("orientation", "swapped"), [(1, False), (3, False), (5, True), (8, True)])
def test_image_size_matches_loaded_shape(tmp_path: Path, orientation: int, swapped: bool) -> None:
    path = _oriented_jpeg(tmp_path / f"o{orientation}.jpg", 24, 8, orientation)
    loaded = load_image(path)
    assert image_size(path) == (loaded.shape[1], loaded.shape[0])
    assert image_size(path) == ((8, 24) if swapped else (24, 8))


def test_image_size_reads_the_header_only(tmp_path: Path) -> None:
    # A JPEG cut after its header still has a size, though it cannot be loaded.
    data = _noisy_jpeg(tmp_path / "full.jpg")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    assert image_size(cut) == (128, 96)
    with pytest.raises(UnreadableImageError):
        load_image(cut)


# -- draft -----------------------------------------------------------------------------------


def test_draft_decodes_jpeg_at_reduced_scale_but_at_least_requested(tmp_path: Path) -> None:
    path = _save(Image.fromarray(_gradient(400, 240)), tmp_path / "big.jpg", "JPEG")
    loaded = load_image(path, draft=(100, 60))
    assert loaded.shape == (60, 100, 3)  # 1/4 scale exactly fits
    loaded = load_image(path, draft=(90, 50))
    assert loaded.shape[1] >= 90 and loaded.shape[0] >= 50
    assert loaded.shape[1] < 400
    loaded = load_image(path, draft=(300, 200))
    assert loaded.shape == (240, 400, 3)  # no reduced scale still covers 300x200


def test_draft_respects_exif_orientation(tmp_path: Path) -> None:
    path = _oriented_jpeg(tmp_path / "rot.jpg", 400, 200, 6)  # displayed 200 x 400
    loaded = load_image(path, draft=(50, 100))
    assert loaded.shape == (100, 50, 3)
    loaded = load_image(path, draft=(100, 50))
    assert loaded.shape[1] >= 100 and loaded.shape[0] >= 50


def test_draft_is_ignored_for_png(tmp_path: Path) -> None:
    path = _save(Image.fromarray(_gradient(40, 20)), tmp_path / "a.png", "PNG")
    assert load_image(path, draft=(10, 5)).shape == (20, 40, 3)


@pytest.mark.parametrize("draft", [(0, 10), (10,), (10.0, 10), "10x10", (True, 10)])
def test_draft_validated(tmp_path: Path, draft: object) -> None:
    with pytest.raises(
        ValueError,
        match=r"draft must be a \(width, height\) pair of positive integers; received draft=",
    ):
        load_image(tmp_path / "whatever.jpg", draft=draft)  # type: ignore[arg-type]


# -- unreadable files ------------------------------------------------------------------------


def _expect_unreadable(path: Path, reason: str) -> UnreadableImageError:
    with pytest.raises(UnreadableImageError) as info:
        load_image(path)
    error = info.value
    assert error.path == path
    assert error.reason.startswith(reason)
    assert str(error).startswith(f"cannot read image {path}: {reason}")
    assert isinstance(error, ValueError)
    with pytest.raises(UnreadableImageError, match=f"cannot read image .*: {re.escape(reason)}"):
        image_size(path)
    return error


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert _expect_unreadable(path, "empty file").reason == "empty file"


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _noisy_jpeg(tmp_path / "full.jpg")
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        UnreadableImageError, match=r"truncated or corrupt: image file is truncated"
    ):
        load_image(path)


def test_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    assert _expect_unreadable(path, "not an image").reason == "not an image"


def test_missing_file(tmp_path: Path) -> None:
    assert _expect_unreadable(tmp_path / "nope.jpg", "no such file").reason == "no such file"


def test_directory(tmp_path: Path) -> None:
    assert _expect_unreadable(tmp_path, "is a directory").reason == "is a directory"


def test_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("L", (64, 64)), tmp_path / "bomb.png", "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # errors above 2x = 200 pixels
    _expect_unreadable(path, "decompression bomb: Image size (4096 pixels) exceeds limit")


def test_unreadable_error_pickles() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(UnreadableImageError(Path("a.jpg"), "empty file")))
    assert (error.path, error.reason, str(error)) == (
        Path("a.jpg"),
        "empty file",
        "cannot read image a.jpg: empty file",
    )


# -- resize ----------------------------------------------------------------------------------


def test_resize_shrink_uses_area_and_enlarge_uses_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    calls: list[int] = []
    real_resize = cv2.resize

    def spy(image: np.ndarray, size: tuple[int, int], *, interpolation: int) -> np.ndarray:
        calls.append(interpolation)
        return real_resize(image, size, interpolation=interpolation)

    monkeypatch.setattr("kit.data.images.cv2.resize", spy)
    image = _gradient(20, 10)
    assert resize(image, (10, 5)).shape == (5, 10, 3)
    assert resize(image, (40, 30)).shape == (30, 40, 3)
    assert calls == [cv2.INTER_AREA, cv2.INTER_LINEAR]


def test_resize_area_averages_blocks() -> None:
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[0, 0] = 200
    np.testing.assert_array_equal(resize(image, (1, 1)), [[[50, 50, 50]]])


def test_resize_keeps_dtype_channels_and_contiguity() -> None:
    image = _gradient(8, 6)[:, ::-1]  # a non-contiguous view
    out = resize(image, (4, 3))
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3) and out.flags["C_CONTIGUOUS"]
    single = resize(np.zeros((6, 8, 1), dtype=np.float32), (4, 3))
    assert single.shape == (3, 4, 1) and single.dtype == np.float32
    assert resize(np.zeros((6, 8), dtype=np.uint8), (4, 3)).shape == (3, 4)


def test_resize_same_size_returns_copy() -> None:
    image = _gradient(4, 3)
    out = resize(image, (4, 3))
    np.testing.assert_array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize("size", [(0, 5), (5,), (5.0, 5), None, (-1, 3)])
def test_resize_validates_size(size: object) -> None:
    with pytest.raises(
        ValueError,
        match=r"size must be a \(width, height\) pair of positive integers; received size=",
    ):
        resize(_gradient(4, 3), size)  # type: ignore[arg-type]


def test_resize_validates_image() -> None:
    with pytest.raises(TypeError, match=r"image must be a numpy array .*received list"):
        resize([[1, 2]], (2, 2))  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"non-empty \(H, W\) or \(H, W, C\) array; received shape \(0, 3, 3\)"
    ):
        resize(np.zeros((0, 3, 3), dtype=np.uint8), (2, 2))
    with pytest.raises(ValueError, match=r"received shape \(3,\)"):
        resize(np.zeros(3, dtype=np.uint8), (2, 2))


# -- file_digest -----------------------------------------------------------------------------


def test_file_digest_is_sha1_of_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # > 1 MiB: several chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha1(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_digest(empty) == hashlib.sha1(b"").hexdigest()


def test_file_digest_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError, match=r"cannot read image .*nope\.jpg: no such file$"):
        file_digest(tmp_path / "nope.jpg")
    with pytest.raises(UnreadableImageError, match=r": is a directory$"):
        file_digest(tmp_path)


def test_jpeg_bytes_in_memory_helper_sanity() -> None:
    # Guard for the fixtures above: Pillow here writes EXIF orientation the way we read it.
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (4, 2)).save(buffer, format="JPEG", exif=exif)
    buffer.seek(0)
    with Image.open(buffer) as img:
        assert img.getexif().get(0x0112) == 6
