"""kit: a Kaggle competition kit for image classification."""

__version__ = "0.1.0"
