"""The import rules of docs/architecture.md, read from the code itself (no import is executed).

Jobs talk through tables, never by importing each other; the model families and the evaluation
code are pure pandas and know nothing of Spark or the lake; the judge stage of the evaluation
imports no model family; ``jobs.common`` (the lake side) does not import the models; nothing
imports in a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jobs", "schemas")
SPARK_LIBRARIES = ("pyspark", "delta", "deltalake", "py4j")

# layer -> the project layers it may import (itself included)
ALLOWED = {
    "jobs.core": ("jobs.core",),
    "jobs.models": ("jobs.core", "jobs.models"),
    "jobs.evaluation": ("jobs.core", "jobs.models", "jobs.evaluation"),
    "jobs.monitoring": ("jobs.core", "jobs.monitoring"),
    "schemas": ("jobs.core", "schemas"),
    "jobs.common": ("jobs.core", "jobs.common", "schemas"),
}
PURE = ("jobs.core", "jobs.models", "jobs.evaluation", "jobs.monitoring")  # pandas only: no Spark, no lake
# The judge stage of evaluate (window forecasts -> scores, choices, the race): it fits nothing, so it
# imports no model family, nothing of jobs.models, only the shared vocabulary and itself.
JUDGE = tuple(f"jobs.evaluation.{m}" for m in ("candidates", "judge", "selection", "scorecard", "ensemble", "race",
                                                 "metrics"))


def project_sources() -> dict[str, str]:
    """Module name -> source of every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path.read_text()
    return out


def imports_of(source: str, modules: set[str]) -> set[str]:
    """Every module a source imports, anywhere in it (function-level imports too): a project
    module when the name resolves to one, else the top-level package of a library."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        else:
            continue
        for name in names:
            found.add(name if name.split(".")[0] in PACKAGES else name.split(".")[0])
    return found


def layer_of(module: str) -> str | None:
    return next((layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")), None)


def is_job(module: str) -> bool:
    """A job (or command) module: a top-level module of ``jobs`` other than the CLI, which
    dispatches to the jobs."""
    return module.count(".") == 1 and module.startswith("jobs.") and layer_of(module) is None \
        and module != "jobs.cli"


def violations(sources: dict[str, str]) -> list[str]:
    """Every broken rule, as ``importer -> imported: why``."""
    modules = set(sources)
    graph = {m: imports_of(s, modules) for m, s in sources.items()}
    out = []
    for module, imported in sorted(graph.items()):
        layer = layer_of(module)
        for target in sorted(imported):
            if is_job(module) and is_job(target):
                out.append(f"{module} -> {target}: a job imports a job (jobs talk through tables)")
            if layer and target.split(".")[0] in PACKAGES and not any(
                    target == allowed or target.startswith(allowed + ".") for allowed in ALLOWED[layer]):
                out.append(f"{module} -> {target}: {layer} may import only {', '.join(ALLOWED[layer])}")
            if module in JUDGE and target.split(".")[0] in PACKAGES and not (
                    target in JUDGE or target == "jobs.core" or target.startswith("jobs.core.")):
                out.append(f"{module} -> {target}: the judge stage fits nothing (it may import only jobs.core "
                           "and the judge stage)")
            if layer in PURE and target in SPARK_LIBRARIES:
                out.append(f"{module} -> {target}: {layer} is plain pandas (no Spark, no lake)")
    out += [f"import circle: {' -> '.join(c)}" for c in circles(graph)]
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each module that is on one (depth-first search)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_the_project_keeps_its_import_rules():
    assert violations(project_sources()) == []


@pytest.mark.parametrize(
    "module, line, expected",
    [
        ("jobs.evaluate", "from jobs.score import forecast_segment", "a job imports a job"),
        ("jobs.models.naive", "from jobs.common.spark import get_spark", "jobs.models may import only"),
        ("jobs.evaluation.fitting", "import pyspark.sql", "is plain pandas"),
        ("jobs.evaluation.judge", "from jobs.models import build_model", "the judge stage fits nothing"),
        ("jobs.evaluation.race", "from jobs.evaluation.fitting import window_forecasts", "the judge stage fits nothing"),
        ("jobs.common.lake", "def f():\n    from jobs.models import MODELS", "jobs.common may import only"),
        ("jobs.core.names", "from jobs.core import calendar", "import circle"),
    ],
)
def test_a_forbidden_import_is_caught(module, line, expected):
    sources = project_sources()
    if expected == "import circle":  # calendar importing names back closes a circle
        sources["jobs.core.calendar"] += "\nfrom jobs.core import names\n"
    sources[module] += "\n" + line + "\n"
    assert any(expected in v for v in violations(sources))
