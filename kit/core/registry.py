"""A named registry of objects (backbones, heads, ...) that rejects duplicates and suggests names.

Example:
    >>> backbones: Registry[str] = Registry("backbone")
    >>> backbones.register("vgg16", "VGG16")
    'VGG16'
    >>> @backbones.decorator("resnet50")
    ... def build_resnet50() -> str:
    ...     return "ResNet50"
    >>> backbones.names()
    ('resnet50', 'vgg16')
    >>> backbones.get("vgg61")
    Traceback (most recent call last):
    ...
    kit.core.errors.UnknownNameError: unknown backbone 'vgg61'. Did you mean: vgg16? Known backbones: resnet50, vgg16
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from kit.core.errors import DeclarationError, InputError, UnknownNameError

T = TypeVar("T")

_MAX_SUGGESTIONS = 3


class Registry(Generic[T]):
    """Maps unique names to objects of one kind.

    Args:
        kind: What the registry holds, singular (e.g. ``"backbone"``); used in error messages.

    Raises:
        ValueError: If ``kind`` is not a non-empty string.
    """

    def __init__(self, kind: str) -> None:
        if not isinstance(kind, str) or not kind.strip():
            raise InputError(
                f"kind must be a non-empty string such as 'backbone'; received kind={kind!r}."
            )
        self.kind = kind
        self._items: dict[str, T] = {}

    def _check_name(self, name: object) -> str:
        if not isinstance(name, str) or not name.strip():
            raise InputError(
                f"{self.kind} name must be a non-empty string; received name={name!r}. "
                f"Pass a name such as 'my_{self.kind}'."
            )
        return name

    def register(self, name: str, item: T) -> T:
        """Registers ``item`` under ``name`` and returns ``item`` unchanged.

        Raises:
            ValueError: If ``name`` is not a non-empty string or is already registered.
        """
        self._check_name(name)
        if name in self._items:
            raise InputError(f"{self.kind} {name!r} is already registered; choose another name")
        self._items[name] = item
        return item

    def decorator(self, name: str) -> Callable[[T], T]:
        """Returns a decorator that registers the decorated object under ``name``.

        The name is validated immediately, not when the decorator is applied.
        """
        self._check_name(name)

        def register_item(item: T) -> T:
            return self.register(name, item)

        return register_item

    def get(self, name: str) -> T:
        """Returns the object registered under ``name``.

        Raises:
            UnknownNameError: A ``KeyError`` listing close matches and every known name.
        """
        try:
            return self._items[name]
        except (KeyError, TypeError):
            pass
        known = self.names()
        message = f"unknown {self.kind} {name!r}."
        if isinstance(name, str):
            close = difflib.get_close_matches(name, known, n=_MAX_SUGGESTIONS)
            if close:
                message += f" Did you mean: {', '.join(close)}?"
        listing = ", ".join(known) if known else "(none registered)"
        message += f" Known {self.kind}s: {listing}"
        raise UnknownNameError(message)

    def names(self) -> tuple[str, ...]:
        """Returns the registered names, sorted."""
        return tuple(sorted(self._items))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry(kind={self.kind!r}, names={list(self.names())!r})"


def with_declared(builtins: Registry[T], extra: Mapping[str, object] | None, *, field: str,
                  noun: str, signature: str) -> Registry[T]:
    """`builtins` plus a competition's own entries (`extra`), which must not clash with them.

    Args:
        builtins: A registry holding the built-in entries (extended in place and returned).
        extra: The competition's declared entries, name -> function.
        field: The competition's field holding them (``losses``), for messages.
        noun: What one entry is (``loss``), for messages.
        signature: The function the field expects (``(y_true, y_pred) -> per-sample loss``).

    Raises:
        ValueError: If a name is empty, not a string, or clashes with a built-in.
        TypeError: If a value is not callable.
    """
    known = builtins.names()
    for name, fn in dict(extra or {}).items():
        if name in builtins:
            raise InputError(
                f"the competition's {field} name {name!r}, which clashes with the built-in "
                f"{noun} {name!r}; rename it in the competition's `{field}` (built-in {field}: "
                f"{', '.join(sorted(known))})"
            )
        if not callable(fn):
            raise DeclarationError(
                f"the competition's {field} must map names to functions {signature}; "
                f"received {name!r}: {type(fn).__name__}"
            )
        builtins.register(name, fn)  # type: ignore[arg-type]
    return builtins
