import numpy as np
import pytest

from kit.data.tta import VARIANTS, apply_variant, average, variants


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


def _box_of_mask(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()], float)


@pytest.mark.parametrize("variant", VARIANTS)
def test_map_boxes_follows_the_pixels_of_every_view(variant):
    from kit.data.images import resize
    from kit.data.tta import map_boxes

    width, height, size = 400, 240, (200, 120)
    image = np.zeros((height, width, 3), np.uint8)
    image[100:140, 150:250] = 255  # a 100 x 40 box at (150, 100) in image pixels
    plain = np.array([[150 * 0.5, 100 * 0.5, 100 * 0.5, 40 * 0.5, 1]])  # in input pixels
    view = resize(apply_variant(image, variant), size)
    expected = _box_of_mask(view[..., 0] > 127)
    mapped = map_boxes(plain, variant, [(width, height)], size)
    assert mapped.dtype == np.float32 and mapped[0, 4] == 1
    np.testing.assert_allclose(mapped[0, :4], expected, atol=1.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_unmap_boxes_inverts_map_boxes(variant):
    from kit.data.tta import map_boxes, unmap_boxes

    rng = np.random.default_rng(0)
    sizes = [(1280, 720), (1518, 854), (160, 90)]
    boxes = np.column_stack([rng.uniform(20, 30, 3), rng.uniform(20, 30, 3),
                             rng.uniform(5, 15, 3), rng.uniform(5, 15, 3), np.ones(3)])
    mapped = map_boxes(boxes, variant, sizes, (64, 48))
    np.testing.assert_allclose(unmap_boxes(mapped[:, :4], variant, sizes, (64, 48)),
                               boxes[:, :4], atol=1e-4)


def test_map_boxes_drops_boxes_a_crop_cuts_away_and_keeps_no_box_rows_empty():
    from kit.data.tta import map_boxes

    boxes = np.array([[0, 0, 10, 10, 1],     # top-left corner: crop_br cuts most of it
                      [40, 40, 10, 10, 1],   # inside every crop
                      [0, 0, 0, 0, 0]], float)  # no box (NoF)
    out = map_boxes(boxes, "crop_br", [(100, 100)] * 3, (100, 100))
    assert out[:, 4].tolist() == [0, 1, 0]
    assert out[0, :4].tolist() == [0, 0, 0, 0] and out[2, :4].tolist() == [0, 0, 0, 0]
    # a looser threshold keeps the part of the first box left in the crop, clipped to it
    loose = map_boxes(boxes[:1], "crop_br", [(100, 100)], (100, 100), min_visible=0.0)
    assert loose[0, 4] == 1 and loose[0, 0] == 0 and loose[0, 2] < 10 / 0.9


def test_map_boxes_rejects_bad_input():
    from kit.data.tta import map_boxes, unmap_boxes

    with pytest.raises(ValueError, match=r"boxes must be \(n, 4\) or \(n, 5\) rows .* received "
                                         r"boxes of shape \(2, 5\) and 1 sizes"):
        map_boxes(np.zeros((2, 5)), "hflip", [(10, 10)], (10, 10))
    with pytest.raises(ValueError, match="unknown TTA variant 'rot90'"):
        unmap_boxes(np.zeros((1, 4)), "rot90", [(10, 10)], (10, 10))
    with pytest.raises(ValueError, match="image sizes must be positive"):
        map_boxes(np.zeros((1, 5)), "crop_tl", [(0, 10)], (10, 10))
