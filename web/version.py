"""The service's version: read once from pyproject.toml, its one source (the service runs from the checkout, unpackaged).

GET /model.json, GET /openapi.json (info.version) and each worker's start-up log line show it.
"""

import tomllib
from pathlib import Path

# The project's settings file, at the repository's root, with the [project] table.
PYPROJECT_PATH = Path(__file__).resolve().parent.parent / "pyproject.toml"


def read_version(path: Path = PYPROJECT_PATH) -> str:
    """The [project] version of a pyproject.toml: the one place a release changes it."""
    with path.open("rb") as file:
        return tomllib.load(file)["project"]["version"]


# The service's version, e.g. "1.0.0" (semantic versioning: see CHANGELOG.md).
VERSION = read_version()
