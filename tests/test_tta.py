import numpy as np
import pytest

from kit.tta import VARIANTS, apply_variant, average, variants


def _image():
    return np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)


def test_variants_are_a_prefix_starting_with_plain():
    assert variants(1) == ("plain",)
    assert variants(3) == VARIANTS[:3]
    with pytest.raises(ValueError, match=r"tta must be an integer from 1 to 8; received tta=0"):
        variants(0)
    with pytest.raises(ValueError, match="received tta=9"):
        variants(9)


def test_flip_and_crops():
    image = _image()
    assert np.array_equal(apply_variant(image, "plain"), image)
    assert np.array_equal(apply_variant(image, "hflip"), image[:, ::-1])
    tl = apply_variant(image, "crop_tl")
    assert tl.shape == (9, 18, 3) and np.array_equal(tl, image[:9, :18])
    assert np.array_equal(apply_variant(image, "crop_br"), image[1:, 2:])
    assert np.array_equal(apply_variant(image, "hflip_crop_tr"), image[:, ::-1][:9, 2:])
    assert apply_variant(image, "crop_center").shape == (9, 18, 3)
    for name in VARIANTS:
        assert apply_variant(image, name).flags["C_CONTIGUOUS"]
    with pytest.raises(ValueError, match="unknown TTA variant 'rot90'"):
        apply_variant(image, "rot90")


def test_average():
    a, b = np.zeros((2, 3)), np.ones((2, 3))
    assert np.allclose(average([a, b]), 0.5)
    assert average([a]).dtype == np.float64
    with pytest.raises(ValueError, match="at least one"):
        average([])
    with pytest.raises(ValueError, match="share one shape"):
        average([a, np.ones((3, 3))])
