"""The offline reader (model/offline_reader.py): the real command over a folder of good, bad and odd files gives one row
per file, in order, each the answer (or the error) the API gives for the same bytes."""

import collections
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from model.errors import error_answer
from model.limits import DEFAULT_LIMITS
from model.offline_reader import (
    DIGIT_COLUMNS,
    EXIT_BROKEN_PIPE,
    EXIT_NO_FILES,
    EXIT_STATUSES,
    INTERNAL,
    NUMBER_COLUMNS,
    UNREADABLE_FILE,
    NetworksUnavailable,
    default_workers,
    main,
    read_file,
    read_in_order,
    read_in_worker,
    start_worker,
)
from tests.drawing import draw_digit, encode
from tests.helpers import PROJECT_ROOT, cgroup
from tests.hostile_requests import png_bomb, truncated
from web.errors import ERRORS, error_body

# A file name that is not UTF-8 (a scan copied from an old system): kept as it was, in CSV and JSON Lines alike, where
# the file system takes it (APFS, on macOS, refuses names that are not UTF-8).
NOT_UTF8_NAME = os.fsdecode(b"k_\xff_five.png")
MB = 2**20


def run_reader(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python -m model.offline_reader ARGUMENTS` from the project's folder; its output as text, undecodable bytes kept."""
    finished = subprocess.run(
        [sys.executable, "-m", "model.offline_reader", *arguments],
        cwd=PROJECT_ROOT,
        input=stdin.encode() if stdin is not None else None,
        capture_output=True,
        timeout=120,
    )
    finished.stdout = finished.stdout.decode("utf-8", "surrogateescape")
    finished.stderr = finished.stderr.decode("utf-8", "surrogateescape")
    return finished


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    """A folder as people leave them: digits in PNG and JPEG, a star, a blank page, and files that are no image."""
    folder = tmp_path_factory.mktemp("scans")
    (folder / "a_seven.png").write_bytes(encode(draw_digit(7)))
    (folder / "b_four.jpg").write_bytes(encode(draw_digit(4), "JPEG", quality=90))
    shutil.copy(PROJECT_ROOT / "examples" / "star.png", folder / "c_star.png")
    (folder / "d_blank.png").write_bytes(encode(Image.new("L", (200, 200), 255)))
    (folder / "e_text.png").write_text("not a picture\n")
    (folder / "f_truncated.png").write_bytes(truncated(encode(draw_digit(3))))
    (folder / "g_empty.png").write_bytes(b"")
    (folder / "h_bomb.png").write_bytes(png_bomb(20_000, 20_000))  # 400 megapixels in a few kB
    with open(folder / "i_huge.tif", "wb") as huge:
        huge.truncate(200 * 2**20)  # 200 MB (sparse): refused from its size, never read
    (folder / "j odd, name ü.PNG").write_bytes(encode(draw_digit(2), "PNG"))
    with contextlib.suppress(OSError):  # EILSEQ on APFS: the other files are read all the same
        (folder / NOT_UTF8_NAME).write_bytes(encode(draw_digit(5)))
    (folder / "l_locked.png").write_bytes(encode(draw_digit(6)))
    (folder / "l_locked.png").chmod(0)
    os.mkfifo(folder / "m_pipe.png")  # a FIFO with no writer: opening it must not wait
    # left out of the walk: not an image by name, hidden, a folder (read only with --recursive)
    (folder / "notes.txt").write_text("scanned on Monday\n")
    (folder / ".hidden.png").write_bytes(encode(draw_digit(1)))
    (folder / "n_folder.png").mkdir()
    (folder / "n_folder.png" / "one.png").write_bytes(encode(draw_digit(1)))
    return folder


def walked(folder: Path) -> list[str]:
    """The files the reader finds in the scans folder, in order (not recursive)."""
    names = sorted(
        ["a_seven.png", "b_four.jpg", "c_star.png", "d_blank.png", "e_text.png", "f_truncated.png", "g_empty.png"]
        + ["h_bomb.png", "i_huge.tif", "j odd, name ü.PNG", NOT_UTF8_NAME, "l_locked.png", "m_pipe.png"]
    )
    return [str(folder / name) for name in names if name != NOT_UTF8_NAME or (folder / name).exists()]


def api_answer(client, route: str, path: str) -> dict:
    """What the API answers for the file's bytes, posted as curl -F does."""
    data = Path(path).read_bytes()
    return client.post(route, data={"image": (io.BytesIO(data), "scan.png")}).get_json()


def expected_error(path: str) -> dict | None:
    """The error of a file the API never sees (the reader cannot open it), else None: the API's answer holds."""
    name = Path(path).name
    if name == "m_pipe.png":
        return {
            "code": UNREADABLE_FILE,
            "message": "The file cannot be read: Not a regular file (a FIFO, a device or a socket).",
        }
    if name == "l_locked.png" and os.geteuid() != 0:  # root reads it all the same
        return {"code": UNREADABLE_FILE, "message": "The file cannot be read: Permission denied."}
    if name in ("missing.png", "n_folder.png"):
        reason = "No such file or directory" if name == "missing.png" else "Is a directory"
        return {"code": UNREADABLE_FILE, "message": f"The file cannot be read: {reason}."}
    if name == "i_huge.tif":
        return {
            "code": "too_large",
            "message": "The file is 209,715,200 bytes; files over 50,331,648 bytes are not read (MAX_DECODED_BYTES, "
            "the most memory decoding one image may take: no picture within the limits needs a larger file).",
        }
    return None


def test_a_folder_of_good_bad_and_odd_files_as_csv_one_row_each_as_the_api_answers(scans, client):
    missing, folder_as_file = str(scans / "missing.png"), str(scans / "n_folder.png")
    finished = run_reader(
        str(scans), missing, "--files-from", "-", "--workers", "1", "--progress", stdin=f"{folder_as_file}\n\n"
    )
    rows = list(csv.reader(io.StringIO(finished.stdout)))
    assert rows[0] == list(DIGIT_COLUMNS)
    files = [*walked(scans), missing, folder_as_file]
    assert [row[0] for row in rows[1:]] == files
    for path, (_, digit, confidence, is_digit, code, message) in zip(files, rows[1:], strict=True):
        answer = expected_error(path) or api_answer(client, "/recognize.json", path)
        if "error" in answer or expected_error(path):
            error = expected_error(path) or answer["error"]
            assert (digit, confidence, is_digit, code, message) == ("", "", "", error["code"], error["message"]), path
        else:
            assert (int(digit), float(confidence), is_digit, code, message) == (
                answer["digit"],
                answer["confidence"],
                "true" if answer["is_digit"] else "false",
                "",
                "",
            ), path
    by_name = {Path(row[0]).name: row for row in rows[1:]}
    digits = ("a_seven.png", "b_four.jpg", "j odd, name ü.PNG", NOT_UTF8_NAME)
    read = {name: by_name[name][1:4:2] for name in digits if name in by_name}
    assert read == {
        "a_seven.png": ["7", "true"],
        "b_four.jpg": ["4", "true"],
        "j odd, name ü.PNG": ["2", "true"],
        **({NOT_UTF8_NAME: ["5", "true"]} if (scans / NOT_UTF8_NAME).exists() else {}),
    }
    assert by_name["c_star.png"][3] == "false"  # read, but no digit: not an error
    codes = {name: row[4] for name, row in by_name.items() if row[4]}
    assert codes == {
        "d_blank.png": "no_digit",
        "e_text.png": "invalid_image",
        "f_truncated.png": "invalid_image",
        "g_empty.png": "invalid_image",
        "h_bomb.png": "too_large",
        "i_huge.tif": "too_large",
        "m_pipe.png": UNREADABLE_FILE,
        "missing.png": UNREADABLE_FILE,
        "n_folder.png": UNREADABLE_FILE,
        **({"l_locked.png": UNREADABLE_FILE} if os.geteuid() != 0 else {}),
    }
    assert finished.returncode == 1, finished.stderr
    assert f"{len(files)}/{len(files)}" in finished.stderr  # the progress bar, at its end
    assert f"{len(codes)} of {len(files)} files not read" in finished.stderr


def test_json_lines_with_two_workers_and_subfolders_carry_the_apis_whole_answers(scans, client):
    finished = run_reader(str(scans), "--recursive", "--format", "jsonl", "--workers", "2")
    rows = [json.loads(line) for line in finished.stdout.splitlines()]
    files = walked(scans)
    files.insert(files.index(str(scans / "m_pipe.png")) + 1, str(scans / "n_folder.png" / "one.png"))
    assert [row["file"] for row in rows] == files
    for path, row in zip(files, rows, strict=True):
        error = expected_error(path)
        assert row == {"file": path, **({"error": error} if error else api_answer(client, "/recognize.json", path))}
    assert rows[files.index(str(scans / "n_folder.png" / "one.png"))]["digit"] == 1
    assert finished.returncode == 1
    assert "file/s" not in finished.stderr  # no progress bar unless asked for, where the standard error is no terminal


def test_numbers_as_csv_and_json_lines_as_the_api_reads_them(tmp_path, client):
    folder = tmp_path / "numbers"
    folder.mkdir()
    for name in ("number.png", "number_with_heart.png", "star.png"):
        shutil.copy(PROJECT_ROOT / "examples" / name, folder / name)
    files = [str(folder / name) for name in ("number.png", "number_with_heart.png", "star.png")]
    answers = [api_answer(client, "/recognize/number.json", path) for path in files]
    assert [answer["number"] for answer in answers[:2]] == ["2024", "12"]

    listed = run_reader(str(folder), "--numbers", "--format", "jsonl", "--workers", "2")
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {"file": path, **answer} for path, answer in zip(files, answers, strict=True)
    ]
    assert listed.returncode == (1 if any("error" in answer for answer in answers) else 0)

    (folder / "text.png").write_text("not a picture\n")
    output = tmp_path / "numbers.csv"
    finished = run_reader(str(folder), "--numbers", "--output", str(output))
    assert finished.stdout == ""
    rows = list(csv.reader(io.StringIO(output.read_text())))
    assert rows[0] == list(NUMBER_COLUMNS)
    assert rows[1:3] == [[files[0], "2024", "2024", "", ""], [files[1], "12", "12", "", ""]]
    assert rows[-1] == [
        str(folder / "text.png"),
        "",
        "",
        "invalid_image",
        "The upload is not an image in a format this service reads.",
    ]
    assert finished.returncode == 1


def test_every_file_read_exits_0(tmp_path):
    (tmp_path / "seven.png").write_bytes(encode(draw_digit(7)))
    finished = run_reader(str(tmp_path / "seven.png"), "--format", "jsonl")
    assert json.loads(finished.stdout)["digit"] == 7
    assert finished.returncode == 0, finished.stderr


@pytest.mark.parametrize("arguments", [[], ["scans", "--workers", "0"], ["scans", "--format", "xml"]])
def test_a_wrong_command_line_exits_2(arguments, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(arguments)
    assert exit_status.value.code == 2
    assert "usage: python -m model.offline_reader" in capsys.readouterr().err


def read_or_end_process(path: str, delay: float) -> dict:
    """A stand-in for a decoder that crashes on one file: ends its process on any path naming 'crash'."""
    time.sleep(delay)
    if "crash" in path:
        os._exit(70)
    return {"read": path, "pid": os.getpid()}


def no_setup() -> None:
    """A pool process's start with nothing to load."""


def test_a_file_that_ends_its_process_is_an_internal_error_row_and_every_other_file_is_still_read():
    paths = [f"{index}.png" for index in range(12)]
    paths[5] = "crash.png"
    rows = list(read_in_order(read_or_end_process, paths, (0.02,), 2, no_setup, ()))
    assert [path for path, _ in rows] == paths
    assert rows[5][1] == {"error": {"code": INTERNAL, "message": "Reading the file ended the process that read it."}}
    assert [answer["read"] for path, answer in rows if path != "crash.png"] == [p for p in paths if p != "crash.png"]


def test_networks_that_cannot_be_loaded_stop_the_run_at_once_instead_of_a_row_per_file(tmp_path):
    paths = [str(tmp_path / f"{index}.png") for index in range(6)]
    rows = read_in_order(
        read_in_worker, paths, (False,), 2, start_worker, (DEFAULT_LIMITS, tmp_path / "no_such_network.keras")
    )
    with pytest.raises(NetworksUnavailable, match="no_such_network"):
        next(rows)


def read_and_note(path: str, log: str, reads_before_crash: int) -> dict:
    """A stand-in reader that notes each read (path and process) in `log`; on a path naming 'crash' it waits until
    `reads_before_crash` reads are noted, then ends its process, as a decoder's crash does."""
    with open(log, "a") as file:
        file.write(f"{path} {os.getpid()}\n")
    if "crash" in path:
        deadline = time.monotonic() + 60
        while len(noted(log)) < reads_before_crash and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(70)
    return {"read": path, "pid": os.getpid()}


def noted(log: str) -> list[tuple[str, int]]:
    """The reads `read_and_note` noted: (path, process id) each."""
    with open(log) as file:
        return [(path, int(pid)) for path, pid in (line.split() for line in file)]


def crash_row(answer: dict) -> bool:
    """Whether a row is the `internal` error of a file that ended its process."""
    return answer == error_answer(INTERNAL, "Reading the file ended the process that read it.")


def test_files_read_before_a_crash_broke_the_pool_keep_their_answers_and_are_not_read_again(tmp_path):
    log = str(tmp_path / "reads.log")
    paths = [f"{index}.png" for index in range(12)]
    paths[2] = "crash.png"
    # the other process reads 3-9 (queued behind the crash as rows 0 and 1 are taken) before the crash ends its own
    rows = list(read_in_order(read_and_note, paths, (log, 10), 2, no_setup, ()))
    assert [path for path, _ in rows] == paths
    assert crash_row(rows[2][1])
    assert [answer["read"] for path, answer in rows if path != "crash.png"] == [p for p in paths if p != "crash.png"]
    reads = collections.Counter(path for path, _ in noted(log))
    assert reads == {**{path: 1 for path in paths}, "crash.png": 2}  # the crash, once more alone; nothing else again


def test_a_pool_that_breaks_while_the_rows_are_still_being_written_is_recovered_from(tmp_path):
    """The consumer (a slow pipe) takes row 0, and the crash breaks the pool before it asks for more: handing the next
    file to the broken pool fails, and the files are read all the same."""
    log = str(tmp_path / "reads.log")
    paths = [f"{index}.png" for index in range(30)]
    paths[2] = "crash.png"
    rows = read_in_order(read_and_note, paths, (log, 0), 1, no_setup, ())
    try:
        written = [next(rows)]
        crashed = wait_for(lambda: [pid for path, pid in noted(log) if path == "crash.png"])[0]
        wait_for(lambda: not process_exists(crashed))  # reaped: the pool knows it is broken
        written += list(rows)
    finally:
        rows.close()
    assert [path for path, _ in written] == paths
    assert crash_row(written[2][1])
    assert all(answer["read"] == path for path, answer in written if path != "crash.png")
    reads = collections.Counter(path for path, _ in noted(log))
    assert reads == {**{path: 1 for path in paths}, "crash.png": 2}


def wait_for(condition, seconds: float = 60.0):
    """`condition()` once it is true, polled; fails the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.02)
    return value


def process_exists(pid: int) -> bool:
    """Whether a process with this id exists (a zombie, not yet reaped, included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def end_process_at_start(log: str) -> None:
    """A pool process's start that crashes (as a native library loading the networks can): noted, then the end."""
    with open(log, "a") as file:
        file.write(f"start {os.getpid()}\n")
    os._exit(70)


def test_a_process_that_dies_as_it_loads_the_networks_stops_the_run_instead_of_a_pool_per_file(tmp_path):
    log = str(tmp_path / "starts.log")
    paths = [f"{index}.png" for index in range(20)]
    rows = read_in_order(read_and_note, paths, (log, 0), 2, end_process_at_start, (log,))
    with pytest.raises(NetworksUnavailable, match="ended the process"):
        next(rows)
    assert 2 <= len(noted(log)) <= 3  # the pool's two, and one alone to tell a crashing start from a crashing file


def crash_at_start(*arguments) -> None:
    """A pool process's start that crashes, whatever it is given."""
    os._exit(70)


def test_a_crashing_start_exits_3_as_networks_that_cannot_be_loaded(tmp_path, monkeypatch, capsys):
    (tmp_path / "seven.png").write_bytes(encode(draw_digit(7)))
    monkeypatch.setattr("model.offline_reader.start_worker", crash_at_start)
    assert main([str(tmp_path), "--workers", "1"]) == 3
    assert "cannot load the networks: loading them ended the process" in capsys.readouterr().err


def test_folder_rows_leave_no_file_descriptor_open(tmp_path):
    open_files = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    os.mkfifo(tmp_path / "pipe.png")
    before = len(os.listdir(open_files))
    for _ in range(300):  # a folder of scans with hundreds of subfolders, listed with --files-from
        assert read_file(None, str(tmp_path), False) == error_answer(
            UNREADABLE_FILE, "The file cannot be read: Is a directory."
        )
        assert read_file(None, str(tmp_path / "pipe.png"), False)["error"]["code"] == UNREADABLE_FILE
    assert len(os.listdir(open_files)) == before


def test_an_oserror_after_the_file_was_read_is_internal_not_unreadable_file(classifier, monkeypatch, tmp_path):
    (tmp_path / "seven.png").write_bytes(encode(draw_digit(7)))

    def failing_network(batch):
        raise OSError(5, "Input/output error")  # as a native runtime's failure can surface

    monkeypatch.setattr(classifier, "runtime", failing_network)
    assert read_file(classifier, str(tmp_path / "seven.png"), False) == error_answer(
        INTERNAL, "Reading the file failed unexpectedly (OSError)."
    )


def test_a_closed_output_pipe_ends_the_run_quietly_with_141(tmp_path):
    for index in range(3):
        (tmp_path / f"{index}.png").write_bytes(encode(draw_digit(index)))
    reader = subprocess.Popen(
        [sys.executable, "-m", "model.offline_reader", str(tmp_path), "--workers", "1"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout.readline() == b"file,digit,confidence,is_digit,error,message\n"
    reader.stdout.close()  # as `| head -1` does; the first row comes after the process pool has started
    assert reader.wait(timeout=120) == EXIT_BROKEN_PIPE == 141
    assert reader.stderr.read() == b""


@pytest.mark.parametrize("how", ["an empty folder", "an empty list"])
def test_no_file_to_read_exits_4_with_a_message_and_no_rows(tmp_path, how):
    (tmp_path / "notes.txt").write_text("no picture here\n")
    finished = run_reader(str(tmp_path)) if how == "an empty folder" else run_reader("--files-from", "-", stdin="\n")
    assert finished.returncode == EXIT_NO_FILES == 4
    assert finished.stdout == ""
    assert "no files to read" in finished.stderr


def test_the_exit_statuses_of_help_and_of_the_docs_are_the_same(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for status, meaning in EXIT_STATUSES.items():
        assert f"{status}: {' '.join(meaning.split())}" in shown
    docs = (PROJECT_ROOT / "docs" / "OFFLINE.md").read_text()
    section = docs.split("\n## Exit status\n", 1)[1].split("\n## ", 1)[0]
    assert [int(status) for status in re.findall(r"^\| (\d+) \|", section, re.M)] == sorted(EXIT_STATUSES)


def test_the_error_rows_are_the_apis_shape_and_internal_its_code_unreadable_file_the_readers_own():
    assert error_answer("no_digit", "No digit.") == error_body("no_digit", "No digit.")
    assert INTERNAL in ERRORS and UNREADABLE_FILE not in ERRORS


@pytest.mark.parametrize(
    ("memory", "cores", "quota", "workers"),
    [
        (512 * MB, 8, "max 100000", 2),  # a 512 MB container on 8 cores: the memory holds two
        (None, 8, "150000 100000", 2),  # a quota of 1.5 CPUs
        (16 * 1024 * MB, 4, "max 100000", 4),  # one per core
        (200 * MB, 4, "max 100000", 1),  # never none
    ],
)
def test_the_default_workers_fit_the_containers_cores_and_memory(monkeypatch, tmp_path, memory, cores, quota, workers):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    (tmp_path / "membership").write_text("0::/\n")
    assert default_workers(cgroup(tmp_path / "cgroup", memory, quota), tmp_path / "membership") == workers
