"""What the machine or container allows (model/machine.py): cores and memory from the process's own cgroup, v2 or v1,
with or without a cgroup namespace, from fake cgroup folders and /proc/self/cgroup files as the kernel writes them."""

from pathlib import Path

import pytest

from model.machine import NO_MEMORY_LIMIT, cgroup_folders, core_count, memory_limit, own_cgroups
from tests.helpers import cgroup

MB = 2**20
# /proc/self/cgroup of a process in a systemd unit, or in a container without its own cgroup namespace
# (docker --cgroupns=host), on cgroup v2 and on cgroup v1.
V2_UNIT = "0::/system.slice/digits.service\n"
V1_CONTAINER = (
    "12:memory:/docker/f00d\n11:cpu,cpuacct:/docker/f00d\n3:cpuset:/docker/f00d\n1:name=systemd:/docker/f00d\n"
)


def membership(tmp_path: Path, text: str) -> Path:
    """A /proc/self/cgroup file with this text."""
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


@pytest.fixture
def eight_cores(monkeypatch):
    """A process that may run on 8 cores (os.sched_getaffinity is Linux's: set where it is missing, as on macOS)."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)


def test_the_memberships_are_read_per_hierarchy(tmp_path):
    assert own_cgroups(membership(tmp_path, V2_UNIT)) == {"": "/system.slice/digits.service"}
    assert own_cgroups(membership(tmp_path, V1_CONTAINER)) == {
        "memory": "/docker/f00d",
        "cpu": "/docker/f00d",
        "cpuacct": "/docker/f00d",
        "cpuset": "/docker/f00d",
        "name=systemd": "/docker/f00d",
    }
    assert own_cgroups(tmp_path / "no-proc") == {}  # not Linux
    assert list(cgroup_folders(Path("/cg"), "/a/b")) == [Path("/cg/a/b"), Path("/cg/a"), Path("/cg")]
    assert list(cgroup_folders(Path("/cg"), "/../../elsewhere")) == [Path("/cg")]


def test_a_systemd_unit_on_cgroup_v2_is_held_to_its_own_cgroups_limits_and_its_slices(tmp_path, eight_cores):
    root = cgroup(tmp_path / "cgroup", None)  # the host's root: no limits
    cgroup(root / "system.slice", 3 * 1024 * MB)
    cgroup(root / "system.slice" / "digits.service", 1024 * MB, quota="200000 100000")
    unit = membership(tmp_path, V2_UNIT)
    assert memory_limit(root, unit) == 1024 * MB and core_count(root, unit) == 2
    cgroup(root / "system.slice", 512 * MB, quota="150000 100000")  # the slice holds it tighter
    assert memory_limit(root, unit) == 512 * MB and core_count(root, unit) == 2
    # the same files, read as before without the membership: the root's, no limits
    assert memory_limit(root, membership(tmp_path, "0::/\n")) > 1024 * MB
    assert core_count(root, membership(tmp_path, "0::/\n")) == 8


def test_a_cgroup_v1_container_without_its_own_namespace_finds_its_limits_down_its_path(tmp_path, eight_cores):
    root = cgroup(tmp_path / "cgroup", None, version=1)
    for controller, files in (
        ("memory", ["memory.limit_in_bytes"]),
        ("cpu", ["cpu.cfs_quota_us", "cpu.cfs_period_us"]),
    ):
        own = root / controller / "docker" / "f00d"
        own.mkdir(parents=True)
        for name, value in zip(files, [768 * MB] if controller == "memory" else [300000, 100000], strict=True):
            (own / name).write_text(f"{value}\n")
    container = membership(tmp_path, V1_CONTAINER)
    assert memory_limit(root, container) == 768 * MB and core_count(root, container) == 3


def test_a_container_that_mounts_its_own_cgroup_as_the_root_reads_the_root_files(tmp_path, eight_cores):
    # cgroup v1 without a cgroup namespace: /proc/self/cgroup names /docker/f00d, but the container's own cgroup is
    # mounted at /sys/fs/cgroup/memory itself, and /docker/f00d is not there
    root = cgroup(tmp_path / "v1", 512 * MB, quota="100000 100000", version=1)
    container = membership(tmp_path, V1_CONTAINER)
    assert memory_limit(root, container) == 512 * MB and core_count(root, container) == 1
    # cgroup v2 with a namespace (Docker's default): "0::/", the root files are the container's
    root = cgroup(tmp_path / "v2", 256 * MB, quota="50000 100000")
    namespaced = membership(tmp_path, "0::/\n")
    assert memory_limit(root, namespaced) == 256 * MB and core_count(root, namespaced) == 1


def test_no_memory_limit_means_the_machines_memory(tmp_path):
    none = membership(tmp_path, "0::/\n")
    machine = memory_limit(cgroup(tmp_path / "v2", None), none)
    assert machine == memory_limit(cgroup(tmp_path / "v1", None, version=1), none)
    assert 0 < machine < NO_MEMORY_LIMIT
    assert memory_limit(tmp_path / "nowhere", tmp_path / "no-proc") == machine
    assert memory_limit(cgroup(tmp_path / "huge", 2 * machine), none) == machine  # never more than the machine has
