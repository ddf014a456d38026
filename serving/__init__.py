"""Serving: the read-only API, the published copy of the warehouse and the run summary."""
