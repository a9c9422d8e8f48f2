"""Dagster definitions, one module per domain; orchestration/definitions.py assembles them."""
