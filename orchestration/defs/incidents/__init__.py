"""Incident sources (any city through a YAML mapping): raw loads and the daily forecasts."""
