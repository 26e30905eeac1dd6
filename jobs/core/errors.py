"""lakecast's exceptions, in one place.

A job exits 2 on a :class:`LakecastError` (the user can act on it: the message says what was
wrong and what to do) and 1 on anything else.
"""

from __future__ import annotations


class LakecastError(Exception):
    """A failure the user can act on; the message says what was wrong and what to do."""


class ConfigError(LakecastError, ValueError):
    """The configuration is missing something or holds a value that cannot work."""


class ModelFailure(Exception):
    """A model family cannot fit or forecast this series; ``reason`` is a short code for the
    record. Callers fall back to the baseline and keep the reason."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
