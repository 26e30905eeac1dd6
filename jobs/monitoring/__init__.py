"""Drift of segments and live models: plain pandas and scipy, no Spark."""
