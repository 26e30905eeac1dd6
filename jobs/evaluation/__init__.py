"""Model evaluation in plain pandas, no Spark: rolling-origin backtests of one segment, the
candidate catalogue, the per-segment choice and promotion gate, and the scorecard.

The evaluate job maps :mod:`jobs.evaluation.segment`'s functions over the segments with Spark;
everything here can be run and tested on a pandas frame. Depends on :mod:`jobs.models` and
:mod:`jobs.core` only.
"""
