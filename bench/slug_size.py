"""How big Heroku's slug gets: what `pip install -r requirements.txt` installs, plus the app, compressed.

    python -m bench.slug_size [--requirements requirements.txt]

Builds a fresh virtualenv in a temporary folder, installs the requirements file into it (needs
the package registry), checks that the service starts there and reads a digit, then reports the
installed size and the size of a gzip'd tar of the site-packages plus the committed app files.
Heroku's limit is 500 MB compressed; the Python runtime the buildpack adds is not counted here.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.service import PROJECT_ROOT

SMOKE_TEST = """
import server
app = server.create_app()
with open("examples/three.png", "rb") as file:
    answer = app.test_client().post("/recognize.json", data=file.read(), content_type="image/png").get_json()
assert answer["digit"] == 3, answer
"""


def folder_megabytes(folder: Path) -> float:
    """Bytes of all regular files under a folder, in MB."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink()) / 1e6


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.slug_size", description=__doc__.split("\n")[0])
    parser.add_argument("--requirements", default="requirements.txt", help="requirements file (default: %(default)s)")
    arguments = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        venv = folder / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(PROJECT_ROOT / arguments.requirements),
            ],
            check=True,
        )
        subprocess.run([str(python), "-c", SMOKE_TEST], check=True, cwd=PROJECT_ROOT, capture_output=True)
        site_packages = next((venv / "lib").glob("python3*/site-packages"))
        app = folder / "app"
        app.mkdir()
        subprocess.run(f"git archive HEAD | tar -xf - -C '{app}'", shell=True, check=True, cwd=PROJECT_ROOT)
        slug = folder / "slug.tar.gz"
        subprocess.run(
            ["tar", "-czf", str(slug), "-C", str(site_packages.parent), "site-packages", "-C", str(folder), "app"],
            check=True,
        )
        print(f"requirements: {arguments.requirements} (the service started from it and read examples/three.png as 3)")
        print(f"installed packages: {folder_megabytes(site_packages):,.0f} MB on disk")
        print(f"committed app files: {folder_megabytes(app):,.1f} MB")
        print(f"slug, gzip-compressed: {slug.stat().st_size / 1e6:,.0f} MB (Heroku's limit: 500 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
