"""The kit's own error types: input the user can fix, explained in one line.

The command line turns a `KitError` into `error: <message>` and exit status 2. Any other
exception is a bug (in the kit, or a library misbehaving): the command line prints its traceback
and exits 1, so a programming error never looks like a user mistake.

Each type also derives from the builtin a caller would expect (`ValueError`, `KeyError`,
`TypeError`, `FileNotFoundError`), so `except ValueError` around a kit call keeps working.

Example:
    >>> try:
    ...     raise InputError("--folds 1: needs at least 2 folds; received --folds 1")
    ... except ValueError as error:
    ...     print(error)
    --folds 1: needs at least 2 folds; received --folds 1
"""

from __future__ import annotations


class KitError(Exception):
    """Input the user can fix; the message names what was wrong and the fix."""


class InputError(KitError, ValueError):
    """A value, file or combination of options the kit cannot use."""


class DeclarationError(KitError, TypeError):
    """A declaration (competition.py, a recipe) of the wrong type."""


class MissingFileError(KitError, FileNotFoundError):
    """A file the user named, or the kit needs, does not exist."""


class UnknownNameError(KitError, KeyError):
    """A name not in a registry; ``str()`` is the plain message (KeyError would quote it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


__all__ = ["DeclarationError", "InputError", "KitError", "MissingFileError", "UnknownNameError"]
