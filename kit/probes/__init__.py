"""Leakage probes: image size, near-duplicates, groups, adversarial validation, attention."""
