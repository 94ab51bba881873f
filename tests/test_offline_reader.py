"""The offline reader (model/offline_reader.py): the real command over a folder of good, bad and odd files gives one row
per file, in order, each the answer (or the error) the API gives for the same bytes."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from model.limits import DEFAULT_LIMITS
from model.offline_reader import (
    DIGIT_COLUMNS,
    INTERNAL,
    NUMBER_COLUMNS,
    UNREADABLE_FILE,
    NetworksUnavailable,
    main,
    read_in_order,
    read_in_worker,
    start_worker,
)
from tests.drawing import draw_digit, encode
from tests.helpers import PROJECT_ROOT
from tests.hostile_requests import png_bomb, truncated

# A file name that is not UTF-8 (a scan copied from an old system): kept as it was, in CSV and JSON Lines alike.
NOT_UTF8_NAME = os.fsdecode(b"k_\xff_five.png")


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
    return [str(folder / name) for name in names]


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
    assert [by_name[name][1:4:2] for name in ("a_seven.png", "b_four.jpg", "j odd, name ü.PNG", NOT_UTF8_NAME)] == [
        ["7", "true"],
        ["4", "true"],
        ["2", "true"],
        ["5", "true"],
    ]
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
