"""The ``lakecast`` command: one sub-command per job, plus ``run`` for the whole chain."""

from __future__ import annotations

import argparse
import sys

from jobs import ingest

JOBS = {"ingest": ingest}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="lakecast",
        description="Batch forecasting on Spark and Delta Lake. Each command is one idempotent job "
        "for its run date; `lakecast COMMAND --help` shows its options.",
    )
    parser.add_argument("command", choices=[*JOBS, "run"], help="job to run")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in JOBS and command != "run":
        parser.error(f"unknown command {command!r}; choose from {', '.join([*JOBS, 'run'])}")
    if command == "run":
        return run_chain(rest)
    return JOBS[command].main(rest)


def run_chain(argv: list[str]) -> int:
    """Every job in order for one run date; stops at the first failure."""
    for name, module in JOBS.items():
        print(f"== lakecast {name}", flush=True)
        code = module.main(argv)
        if code != 0:
            print(f"lakecast run: {name} failed (exit {code}); later jobs not run", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
