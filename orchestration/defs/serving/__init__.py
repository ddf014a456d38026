"""Serving: the published read-only copy and the Evidence site."""
