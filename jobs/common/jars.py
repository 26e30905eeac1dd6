"""Resolve the Delta Lake JVM jars from Maven Central into a local folder.

Run once at set-up (``python -m jobs.common.jars``); every later Spark session reads the jars
from that folder, so jobs need no network. The pip package ``delta-spark`` ships the Python
API only; the matching jars below must stay in step with it and with pyspark's minor version.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# group:artifact:version, matching pyspark 4.2 (Scala 2.13) and delta-spark 4.4.0.
DELTA_JARS = (
    "io.delta:delta-spark_4.2_2.13:4.4.0",
    "io.delta:delta-storage:4.4.0",
)

PROJECT_DIR = Path(__file__).resolve().parents[2]


def jars_dir() -> Path:
    """Folder that holds the resolved jars (``LAKECAST_JARS_DIR`` or ``<project>/.cache/jars``)."""
    return Path(os.environ.get("LAKECAST_JARS_DIR", PROJECT_DIR / ".cache" / "jars"))


def jar_file_name(coordinate: str) -> str:
    """``group:artifact:version`` -> ``artifact-version.jar`` (Maven's file name)."""
    _, artifact, version = coordinate.split(":")
    return f"{artifact}-{version}.jar"


def local_jars() -> list[Path]:
    """The resolved jars that exist locally; empty when set-up has not run."""
    paths = [jars_dir() / jar_file_name(c) for c in DELTA_JARS]
    return paths if all(p.is_file() for p in paths) else []


def resolve(target: Path | None = None) -> list[Path]:
    """Download the jars with Maven (``dependency:copy``) unless they are already there."""
    target = target or jars_dir()
    target.mkdir(parents=True, exist_ok=True)
    mvn = shutil.which("mvn")
    out = []
    for coordinate in DELTA_JARS:
        path = target / jar_file_name(coordinate)
        if not path.is_file():
            if mvn is None:
                raise RuntimeError(
                    f"Maven ('mvn') is needed once to fetch {coordinate} from Maven Central; "
                    "install it (apt-get install maven) or put the jar in "
                    f"{target} by hand, then rerun `make setup`."
                )
            log.info("resolving %s into %s", coordinate, target)
            subprocess.run(
                [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={coordinate}",
                 f"-DoutputDirectory={target}"],
                check=True,
            )
        out.append(path)
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for p in resolve():
        print(p)
    sys.exit(0)
