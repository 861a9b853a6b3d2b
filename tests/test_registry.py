"""Tests for kit.core.registry."""

from __future__ import annotations

import pytest

from kit.core.registry import Registry, UnknownNameError


@pytest.fixture
def backbones() -> Registry[str]:
    registry: Registry[str] = Registry("backbone")
    for name in ("vgg16", "resnet50", "efficientnet_b0"):
        registry.register(name, name.upper())
    return registry


def test_register_returns_item_and_get_finds_it(backbones: Registry[str]) -> None:
    item = object()
    registry: Registry[object] = Registry("head")
    assert registry.register("dense", item) is item
    assert registry.get("dense") is item
    assert backbones.get("vgg16") == "VGG16"


def test_names_sorted_contains_len_iter(backbones: Registry[str]) -> None:
    assert backbones.names() == ("efficientnet_b0", "resnet50", "vgg16")
    assert "vgg16" in backbones
    assert "vgg61" not in backbones
    assert 3 not in backbones
    assert len(backbones) == 3
    assert list(backbones) == ["efficientnet_b0", "resnet50", "vgg16"]


def test_duplicate_name_is_rejected(backbones: Registry[str]) -> None:
    with pytest.raises(
        ValueError, match=r"^backbone 'vgg16' is already registered; choose another name$"
    ):
        backbones.register("vgg16", "other")
    assert backbones.get("vgg16") == "VGG16"


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_name_must_be_non_empty_str(backbones: Registry[str], name: object) -> None:
    with pytest.raises(
        ValueError, match=r"backbone name must be a non-empty string; received name="
    ):
        backbones.register(name, "x")  # type: ignore[arg-type]


def test_kind_must_be_non_empty_str() -> None:
    with pytest.raises(ValueError, match=r"kind must be a non-empty string .*received kind=''"):
        Registry("")


def test_decorator_registers_and_returns_object() -> None:
    registry: Registry[object] = Registry("head")

    @registry.decorator("dense")
    def build_dense() -> str:
        return "dense"

    assert registry.get("dense") is build_dense
    assert build_dense() == "dense"
    with pytest.raises(ValueError, match="head 'dense' is already registered"):
        registry.decorator("dense")(lambda: None)


def test_decorator_validates_name_immediately() -> None:
    with pytest.raises(ValueError, match="head name must be a non-empty string"):
        Registry("head").decorator("")


def test_miss_suggests_close_matches(backbones: Registry[str]) -> None:
    with pytest.raises(UnknownNameError) as info:
        backbones.get("vgg61")
    assert str(info.value) == (
        "unknown backbone 'vgg61'. Did you mean: vgg16? "
        "Known backbones: efficientnet_b0, resnet50, vgg16"
    )
    assert isinstance(info.value, KeyError)


def test_miss_without_close_match_omits_suggestion(backbones: Registry[str]) -> None:
    with pytest.raises(KeyError) as info:
        backbones.get("xyz")
    assert str(info.value) == (
        "unknown backbone 'xyz'. Known backbones: efficientnet_b0, resnet50, vgg16"
    )


def test_miss_lists_at_most_three_suggestions() -> None:
    registry: Registry[int] = Registry("head")
    for index, name in enumerate(("dense1", "dense2", "dense3", "dense4")):
        registry.register(name, index)
    with pytest.raises(UnknownNameError) as info:
        registry.get("dense")
    suggestion = str(info.value).split("Did you mean: ")[1].split("?")[0]
    assert len(suggestion.split(", ")) == 3


def test_miss_on_empty_registry_and_unhashable_name() -> None:
    registry: Registry[int] = Registry("head")
    with pytest.raises(UnknownNameError, match=r"Known heads: \(none registered\)"):
        registry.get("dense")
    with pytest.raises(UnknownNameError, match=r"unknown head \['dense'\]"):
        registry.get(["dense"])  # type: ignore[arg-type]
