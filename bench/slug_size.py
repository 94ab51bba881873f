"""How big Heroku's slug gets: what `pip install -r requirements.txt` installs, plus the app, compressed.

    python -m bench.slug_size [--requirements requirements.txt]

Builds a fresh virtualenv in a temporary folder, installs the requirements file into it (needs
the package registry), takes the committed app files less what `.slugignore` leaves out (as
Heroku does after a push, before the buildpack runs), checks that the service starts from them
and reads a digit, then reports the installed size and the size of a gzip'd tar of the
site-packages plus those app files. Heroku's limit is 500 MB compressed; the Python runtime the
buildpack adds is not counted here.
"""

import argparse
import fnmatch
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.service import PROJECT_ROOT

SMOKE_TEST = """
import server
app = server.create_app()
with open("examples/three.png", "rb") as file:
    answer = app.test_client().post("/recognize.json", data=file.read(), content_type="image/png").get_json()
assert answer["digit"] == 3, answer
"""
# What Heroku leaves out of the slug, and what git leaves out of a commit (a folder may hold its own).
SLUGIGNORE = ".slugignore"
GITIGNORE = ".gitignore"


def ignore_patterns(path: Path) -> list[str]:
    """The patterns of an ignore file (.slugignore, .gitignore), one a line, without blank lines and comments."""
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relative: str, patterns: Sequence[str], is_folder: bool = False) -> bool:
    """Whether a path (relative to the ignore file's folder, with /) matches a pattern, itself or through a folder.

    As git and Heroku's slug compiler read them (neither `!` nor `**` is used here): a pattern with
    a slash before its end is anchored at the root, one without matches a name at any depth; a
    trailing slash matches folders only; `*`, `?` and `[...]` stay within one name.
    """
    parts = relative.strip("/").split("/")
    for pattern in patterns:
        folders_only = pattern.endswith("/")
        names = pattern.strip("/").split("/")
        if "/" in pattern.rstrip("/"):  # anchored: the path's first names, one for one
            starts = [0] if len(parts) >= len(names) else []
        else:  # one name, anywhere
            starts = range(len(parts))
        for start in starts:
            end = start + len(names)
            matched = all(fnmatch.fnmatchcase(part, name) for part, name in zip(parts[start:end], names, strict=True))
            if matched and not (folders_only and end == len(parts) and not is_folder):
                return True
    return False


def remove_slugignored(folder: Path) -> list[str]:
    """Delete from an app folder what its .slugignore names, as Heroku does; the paths removed, relative, sorted."""
    patterns = ignore_patterns(folder / SLUGIGNORE)
    removed = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.exists() and ignored(relative, patterns, path.is_dir()):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(relative)
    return removed


def copy_slug(source: Path, target: Path) -> None:
    """Copy a working tree's app files into `target` as Heroku's slug would hold them: what git would commit (no .git,
    nothing a .gitignore names), less what .slugignore names."""
    slug_patterns = ignore_patterns(source / SLUGIGNORE)

    def copy_folder(folder: Path, git_patterns: list[tuple[Path, list[str]]]) -> None:
        git_patterns = [*git_patterns, (folder, ignore_patterns(folder / GITIGNORE))]
        for path in sorted(folder.iterdir()):
            is_folder = path.is_dir() and not path.is_symlink()
            if path.name == ".git" or any(
                ignored(path.relative_to(base).as_posix(), patterns, is_folder) for base, patterns in git_patterns
            ):
                continue
            relative = path.relative_to(source)
            if ignored(relative.as_posix(), slug_patterns, is_folder):
                continue
            if is_folder:
                copy_folder(path, git_patterns)
            else:
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / relative, follow_symlinks=False)

    target.mkdir(parents=True, exist_ok=True)
    copy_folder(source, [])


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
        site_packages = next((venv / "lib").glob("python3*/site-packages"))
        app = folder / "app"
        app.mkdir()
        subprocess.run(f"git archive HEAD | tar -xf - -C '{app}'", shell=True, check=True, cwd=PROJECT_ROOT)
        removed = remove_slugignored(app)
        subprocess.run([str(python), "-c", SMOKE_TEST], check=True, cwd=app, capture_output=True)
        slug = folder / "slug.tar.gz"
        subprocess.run(
            ["tar", "-czf", str(slug), "-C", str(site_packages.parent), "site-packages", "-C", str(folder), "app"],
            check=True,
        )
        print(f"requirements: {arguments.requirements} (the service started from the slug and read examples/three.png)")
        print(f"installed packages: {folder_megabytes(site_packages):,.0f} MB on disk")
        print(f"committed app files, less {len(removed)} that .slugignore leaves out: {folder_megabytes(app):,.1f} MB")
        print(f"slug, gzip-compressed: {slug.stat().st_size / 1e6:,.0f} MB (Heroku's limit: 500 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
