"""Start the service exactly as Heroku does (the Procfile's web command) on a free local port."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunningService:
    """A started gunicorn: its base URL, master process, output log and how long it took to answer."""

    url: str
    process: subprocess.Popen
    log: Path
    cold_start_seconds: float


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def procfile_command(procfile: Path = PROJECT_ROOT / "Procfile") -> str:
    """The `web:` command of the Procfile, exactly as Heroku runs it."""
    for line in procfile.read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise ValueError(f"{procfile} has no web: process")


def worker_pids(master: int) -> list[int]:
    """The pids of a gunicorn master's workers (its child processes)."""
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


@contextlib.contextmanager
def start_service(
    log: Path,
    environment: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    command: str | None = None,
    directory: Path = PROJECT_ROOT,
) -> Iterator[RunningService]:
    """Run `directory`'s Procfile web command (or `command`) with PORT set; wait for GET /healthz to answer 200; stop it after."""
    port = free_port()
    env = {
        **os.environ,
        # the gunicorn installed beside this Python, as on Heroku where it is on the PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **(environment or {}),
        "PORT": str(port),
    }
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            # bash runs the line as Heroku does; the Procfile's own `exec` makes gunicorn this process (one pid to signal)
            ["bash", "-c", command or procfile_command(directory / "Procfile")],
            cwd=directory,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        while True:
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or workers still loading
                pass
            if process.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError("the service did not come up:\n" + log.read_text()[-3000:])
            time.sleep(0.05)
        yield RunningService(url, process, log, time.monotonic() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
