"""Deterministic sample data in the real published source schemas (see `incidents`)."""
