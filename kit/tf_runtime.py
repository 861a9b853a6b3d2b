"""The one place TensorFlow is imported, with the runtime settings measured to be faster.

`TF_ENABLE_ONEDNN_OPTS` must be set before TensorFlow loads. benchmarks/run.py
(`onednn_speedup`) measures it; the default here follows that measurement. A value already in
the environment always wins.
"""

from __future__ import annotations

import os
from types import ModuleType

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
ONEDNN_DEFAULT = "1"


def configure_environment(environ: dict[str, str] | None = None) -> None:
    """Set TensorFlow's environment defaults (oneDNN on, C++ logs quiet) unless already set."""
    env = os.environ if environ is None else environ
    env.setdefault(ONEDNN_ENV, ONEDNN_DEFAULT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tensorflow() -> ModuleType:
    """Import TensorFlow with kit's defaults and return the module."""
    configure_environment()
    import tensorflow as tf

    return tf


def keras() -> ModuleType:
    """Import Keras 3 (after TensorFlow's environment is configured)."""
    tensorflow()
    import keras as keras_module

    return keras_module


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow for one training call."""
    keras().utils.set_random_seed(int(seed))
