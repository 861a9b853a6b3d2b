"""cv layer."""
