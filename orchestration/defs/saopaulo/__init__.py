"""Sao Paulo phone thefts: raw loads and the place-type model."""
