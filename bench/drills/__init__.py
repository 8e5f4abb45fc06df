"""Drills: runs that break the pipeline on purpose and check how it recovers (not installed)."""
