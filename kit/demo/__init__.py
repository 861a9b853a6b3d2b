"""Synthetic demo datasets in the competitions' own Kaggle layouts, and their helpers."""
