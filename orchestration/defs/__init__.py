"""Dagster definitions by domain (incidents, france, saopaulo, serving); dbt.py builds dbt."""
