"""Shared code for lakecast jobs: config, Spark session, lake access, logging."""
