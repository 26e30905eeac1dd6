"""Model specs: a model family and its settings as canonical JSON, what the promotion gate
compares and train refits (plain JSON, no model is built here)."""

from __future__ import annotations

import json
from typing import Any

from jobs.core import names


def model_spec(family: str, args: dict[str, Any]) -> str:
    """``{"family": ..., "args": {...}}`` as canonical JSON (sorted keys, lists not tuples)."""
    return json.dumps({"family": family, "args": args}, sort_keys=True, default=list)


def family_of(spec: str | None) -> str | None:
    """The family named in a spec (None for no spec)."""
    return json.loads(spec)["family"] if spec else None


def strategy(spec: str) -> str:
    """The spec without what a backtest decides (a pool's members, an ensemble's weights): two
    models with the same strategy are the same model to the promotion gate, as an AutoETS refit
    that picks another form is."""
    d = json.loads(spec)
    learned = {names.POOL: "members", names.ENSEMBLE: "weights"}.get(d["family"])
    if learned:
        d["args"] = {k: v for k, v in d["args"].items() if k != learned}
    return model_spec(d["family"], d["args"])


def families_in(spec: str) -> set[str]:
    """Every family a spec fits: its own, and its members' for a combination (members are specs)."""
    d = json.loads(spec)
    found = {d["family"]}
    for member in d["args"].get("members", []) if isinstance(d["args"], dict) else []:
        found |= families_in(member)
    return found


def fitted_members(spec: str) -> list[str]:
    """The specs a model of ``spec`` fits itself: a family its own spec, a combination its members'
    (an ensemble's with a positive weight), at any depth."""
    d = json.loads(spec)
    members = d["args"].get("members") if isinstance(d["args"], dict) else None
    if not members:
        return [spec]
    weights = d["args"].get("weights") or [1.0] * len(members)
    return [s for m, w in zip(members, weights) if w > 0 for s in fitted_members(m)]
