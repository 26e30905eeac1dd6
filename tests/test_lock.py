"""Installs are reproducible: the lock files agree with setup.cfg's pins, and the environment the
tests run in is exactly the locked one."""

from __future__ import annotations

import configparser
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins(text: str) -> list[Requirement]:
    """The requirements of a requirements-style text (comments and blank lines skipped)."""
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return [Requirement(line) for line in lines if line]


def locked(name: str) -> dict[str, Requirement]:
    """Name -> locked requirement of the lock file ``name`` whose marker applies here."""
    return {canonicalize_name(r.name): r for r in pins((ROOT / name).read_text())
            if r.marker is None or r.marker.evaluate()}


def declared() -> tuple[list[Requirement], list[Requirement]]:
    """setup.cfg's runtime pins and its dev extra's pins."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return pins(cfg["options"]["install_requires"]), pins(cfg["options.extras_require"]["dev"])


def test_every_pin_of_setup_cfg_is_locked_at_its_version():
    runtime, dev = declared()
    for lock, wanted in (("requirements.lock", runtime), ("requirements-dev.lock", runtime + dev)):
        table = locked(lock)
        for req in wanted:
            assert canonicalize_name(req.name) in table, f"{req.name} is not in {lock}: run `make lock`"
            assert table[canonicalize_name(req.name)].specifier == req.specifier, (
                f"{lock} has {table[canonicalize_name(req.name)]}, setup.cfg {req}: run `make lock`")


def test_the_environment_is_exactly_the_dev_lock():
    wrong = {}
    for name, req in locked("requirements-dev.lock").items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed is None or not req.specifier.contains(installed, prereleases=True):
            wrong[name] = (str(req.specifier), installed)
    assert wrong == {}
