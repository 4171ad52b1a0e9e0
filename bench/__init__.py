"""The side-by-side benchmark: ``python -m bench`` (see bench/README.md)."""
