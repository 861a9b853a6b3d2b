"""The one place TensorFlow is imported, with the runtime settings measured to be faster.

`TF_ENABLE_ONEDNN_OPTS` must be set before TensorFlow loads. benchmarks/run.py
(`onednn_speedup`) measures it; the default here follows that measurement. A value already in
the environment always wins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from types import ModuleType

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
ONEDNN_DEFAULT = "1"


def configure_environment(environ: dict[str, str] | None = None) -> None:
    """Set TensorFlow's environment defaults (oneDNN on, C++ logs quiet) unless already set."""
    env = os.environ if environ is None else environ
    env.setdefault(ONEDNN_ENV, ONEDNN_DEFAULT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


DEBUG_ENV = "KIT_DEBUG"


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hide what native code writes to fd 2 (TensorFlow logs there before reading any setting).

    Python exceptions still propagate; `KIT_DEBUG=1` shows everything.
    """
    if os.environ.get(DEBUG_ENV) or "tensorflow" in sys.modules:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tensorflow() -> ModuleType:
    """Import TensorFlow with kit's defaults and return the module."""
    configure_environment()
    with _quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery logs its own noise once
    if not os.environ.get(DEBUG_ENV):
        # Retracing notices: each fold of a fine-tuning run builds its own model, so its
        # train function is traced once per fold by design. KIT_DEBUG=1 shows them.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return tf


def keras() -> ModuleType:
    """Import Keras 3 (after TensorFlow's environment is configured)."""
    tensorflow()
    import keras as keras_module

    return keras_module


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow for one training call."""
    keras().utils.set_random_seed(int(seed))
