"""The vocabulary every layer shares: names, the calendar and the errors.

Nothing here imports Spark or any other part of ``jobs``, so the model families, the evaluation
code, the lake code and the schemas can all depend on it without depending on each other.
"""
