"""What this machine or container allows a process: the CPU cores it may use and the memory it may hold.

The limits are those of the process's own cgroup, named in /proc/self/cgroup (cgroup v2's `0::/path` line; cgroup
v1's memory and cpu controllers' lines), and of every cgroup above it: a systemd unit, or a container that shares
the host's cgroup namespace (docker --cgroupns=host), sees the whole hierarchy and finds its limits down its own path.
Inside a cgroup namespace (Docker's default on cgroup v2), or where the path is not in the mounted hierarchy (a v1
container mounts its own cgroup as the root), the root files are the container's own. Light: only the standard
library, so that the gunicorn master reads them before any worker loads NumPy.
"""

import math
import os
from collections.abc import Iterator
from pathlib import Path

# The cgroup hierarchy: cgroup v2 files in the process's folder below this root, cgroup v1 files in each controller's
# folder (memory/, cpu/) below it.
CGROUP = Path("/sys/fs/cgroup")
# Which cgroup this process belongs to, per hierarchy: "0::/path" (v2), "N:memory:/path", "N:cpu,cpuacct:/path" (v1).
MEMBERSHIP = Path("/proc/self/cgroup")
# A memory limit above this means none (cgroup v1 then writes about 8 EiB; Heroku's buildpack reads it so).
NO_MEMORY_LIMIT = 2**40


def own_cgroups(membership: Path = MEMBERSHIP) -> dict[str, str]:
    """This process's cgroup path per hierarchy: "" for cgroup v2, else each v1 controller's name; {} where unknown."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:  # not Linux, or /proc not mounted
        return {}
    paths = {}
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def cgroup_folders(root: Path, path: str) -> Iterator[Path]:
    """The folders of the cgroup at `path` below `root` and of each cgroup above it, the root last: where its limits lie."""
    parts = [part for part in path.split("/") if part]
    if ".." in parts:  # a cgroup outside this namespace's view: only the root is this process's to read
        parts = []
    for depth in range(len(parts), -1, -1):
        yield root.joinpath(*parts[:depth])


def memory_limit(cgroup: Path = CGROUP, membership: Path = MEMBERSHIP) -> int:
    """Bytes this process may use: the lowest memory limit of its cgroups (v2 and v1), never more than the machine has."""
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # not told on this system
        limit = NO_MEMORY_LIMIT
    own = own_cgroups(membership)
    files = [folder / "memory.max" for folder in cgroup_folders(cgroup, own.get("", "/"))]
    files += [folder / "memory.limit_in_bytes" for folder in cgroup_folders(cgroup / "memory", own.get("memory", "/"))]
    for file in files:
        try:
            text = file.read_text().strip()  # v2: bytes or "max"; v1: bytes
        except OSError:  # absent: no limit at this level, or not this version
            continue
        if text.isdigit() and int(text) < NO_MEMORY_LIMIT:
            limit = min(limit, int(text))
    return limit


def core_count(cgroup: Path = CGROUP, membership: Path = MEMBERSHIP) -> int:
    """CPU cores this process may use: those it may run on (as `nproc` counts), fewer under a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for quota, period in _cpu_quotas(cgroup, own_cgroups(membership)):
        if quota > 0 and period > 0:
            cores = min(cores, math.ceil(quota / period))
    return max(1, cores)


def processes_that_fit(
    process_bytes: int, parent_bytes: int, cgroup: Path = CGROUP, membership: Path = MEMBERSHIP
) -> int:
    """How many processes of `process_bytes` to run beside a parent of `parent_bytes`: one per core, as memory allows, at
    least one."""
    by_memory = (memory_limit(cgroup, membership) - parent_bytes) // process_bytes
    return max(1, min(core_count(cgroup, membership), by_memory))


def _cpu_quotas(cgroup: Path, own: dict[str, str]) -> Iterator[tuple[int, int]]:
    """(quota, period) in microseconds of each of the process's cgroups that sets both (v2 cpu.max, v1 cpu.cfs_*)."""
    for folder in cgroup_folders(cgroup, own.get("", "/")):
        yield from _pair(folder / "cpu.max")  # "<quota> <period>", or "max <period>" for none
    for folder in cgroup_folders(cgroup / "cpu", own.get("cpu", "/")):
        yield from _pair(folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us")  # a quota of -1 for none


def _pair(*files: Path) -> Iterator[tuple[int, int]]:
    """The two whole numbers the files hold together; nothing when one is absent or a field is no number ("max")."""
    try:
        first, second = (int(field) for file in files for field in file.read_text().split())
    except (OSError, ValueError):
        return
    yield first, second
