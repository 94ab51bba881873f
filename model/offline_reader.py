"""Read a folder (or a list) of image files offline, with the service's decoding, networks and limits, on its cores.

    python -m model.offline_reader scans/ [--numbers] [--format csv|jsonl] [--output FILE] [--workers N]

One row per file, in input order, as CSV or JSON Lines (docs/OFFLINE.md): the digit (or the number) the service would
answer, or the error it would give, with its code. A file that cannot be read at all (missing, a directory, a FIFO,
no permission) gets the offline-only code `unreadable_file`; nothing a file holds ends the run. The files are read in a
pool of processes, each with the networks loaded once, each file under the service's limits for one image
(model/limits.py), so that a hostile file costs bounded memory and time.
"""

import argparse
import collections
import concurrent.futures
import contextlib
import csv
import errno
import itertools
import json
import logging
import multiprocessing
import os
import signal
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

from PIL import Image
from tqdm import tqdm

from model import DEFAULT_MODEL_PATH
from model.answers import number_answer
from model.classifier import Classifier
from model.decoding import READABLE_FORMATS
from model.errors import ImageTooLargeError, RecognitionError, error_answer
from model.limits import DEFAULT_LIMITS, NumberLimits
from model.machine import CGROUP, MEMBERSHIP, processes_that_fit

logger = logging.getLogger(__name__)

# The runtime the service runs by default (MODEL_RUNTIME=litert): the TensorFlow Lite exports, no TensorFlow.
RUNTIME = "litert"
# The error code of a file that cannot be read at all (missing, no permission, a directory, a FIFO or a device): the API
# never meets one (its uploads are bytes), so this code is the offline reader's own, not one of web/errors.py's.
UNREADABLE_FILE = "unreadable_file"
# The error code of a file whose reading raised something unexpected or ended its process (a crash in a decoder): the
# API's code for its own bugs (web/errors.py's ERRORS holds it; tests/test_offline_reader.py checks that it does).
INTERNAL = "internal"
# Memory one reading process holds at most: about 110 MB with the networks loaded and small images, up to 200 MB while
# it reads the largest photos the limits allow ("Speed and memory" in docs/OFFLINE.md); and the parent, which lists the
# files and writes the rows (about 63 MB). The default --workers is as many as the memory holds at that.
READER_BYTES = 200 * 2**20
PARENT_BYTES = 70 * 2**20
# Files handed to the pool ahead of the row being written, per worker: enough to keep every worker busy, few enough
# that a million files never become a million pending tasks.
QUEUED_PER_WORKER = 4
# The columns of the CSV output, for digits and for numbers.
DIGIT_COLUMNS = ("file", "digit", "confidence", "is_digit", "error", "message")
NUMBER_COLUMNS = ("file", "number", "lines", "error", "message")
FORMATS = ("csv", "jsonl")
# Exit statuses, each with its meaning in EXIT_STATUSES (--help and docs/OFFLINE.md's table, which a test compares).
EXIT_ALL_READ = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_NETWORKS = 3
EXIT_NO_FILES = 4
EXIT_INTERRUPTED = 130
# The reader of the output went away (| head): 128 + SIGPIPE, as a shell reports a command that a closed pipe ended.
EXIT_BROKEN_PIPE = 141
EXIT_STATUSES = MappingProxyType(
    {
        EXIT_ALL_READ: "every file was read (pictures that are not digits included)",
        EXIT_SOME_FAILED: "some file's row is an error (its code and message say why; docs/OFFLINE.md lists the codes)",
        EXIT_USAGE: "a wrong command line",
        EXIT_NO_NETWORKS: "the networks cannot be loaded",
        EXIT_NO_FILES: "no file to read (folders without image files, an empty list)",
        EXIT_INTERRUPTED: "interrupted",
        EXIT_BROKEN_PIPE: "the output's reader went away (| head): the rest is not read",
    }
)

# A pool process's classifier and limits, set once by the pool's initializer (`start_worker`), or why it failed.
_classifier: Classifier | None = None
_limits: NumberLimits = DEFAULT_LIMITS
_load_failure = ""


class NetworksUnavailable(RuntimeError):
    """A pool process could not load the networks: no file can be read, so the run stops (not a row per file)."""


def default_workers(cgroup: Path = CGROUP, membership: Path = MEMBERSHIP) -> int:
    """--workers' default: one process per core this process may use, as many as its memory limit holds, at least 1."""
    return processes_that_fit(READER_BYTES, PARENT_BYTES, cgroup, membership)


def image_suffixes() -> frozenset[str]:
    """The file name endings (lower case) Pillow gives to the formats the service reads: what a folder's walk picks."""
    return frozenset(suffix for suffix, name in Image.registered_extensions().items() if name in READABLE_FORMATS)


# A folder gives its image files (by name ending, hidden ones left out) sorted by name, and its subfolders' in their place
# when `recursive`; any other path is read as given, whatever it is (its row tells).
def list_files(paths: Iterable[str], recursive: bool = False) -> list[str]:
    """The files to read, in order: the folders' image files, and every other path as given."""
    suffixes = image_suffixes()
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            files += _walk(path, suffixes, recursive)
        else:
            files.append(path)
    return files


def _walk(folder: str, suffixes: frozenset[str], recursive: bool) -> list[str]:
    """A folder's image files sorted by name, and its subfolders' (never through a link) when `recursive`."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        logger.warning("cannot list %s: %s", folder, error.strerror)
        return [folder]  # its row says why
    files = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            files += _walk(entry.path, suffixes, recursive) if recursive else []
        elif Path(entry.name).suffix.lower() in suffixes:
            files.append(entry.path)
    return files


# The size is told before any byte is read, and never more than `max_bytes` + 1 bytes are read. What is not a readable
# regular file raises OSError: FileNotFoundError, PermissionError, IsADirectoryError, or a FIFO's, device's or socket's.
def read_bytes(path: str, max_bytes: int) -> bytes:
    """A regular file's bytes; ImageTooLargeError when it holds over `max_bytes`, OSError when it cannot be read."""
    # non-blocking, so that opening a FIFO with no writer returns at once instead of waiting forever
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):  # os.open opens a folder read-only all the same
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(status.st_mode):
            raise OSError(0, "Not a regular file (a FIFO, a device or a socket)")
        with open(descriptor, "rb", closefd=False) as file:
            data = file.read(max_bytes + 1) if status.st_size <= max_bytes else b""
    finally:
        os.close(descriptor)
    size = max(status.st_size, len(data))  # a file that grew while it was read counts as read
    if size > max_bytes:
        raise ImageTooLargeError(
            f"The file is {size:,} bytes; files over {max_bytes:,} bytes are not read (MAX_DECODED_BYTES, the most "
            "memory decoding one image may take: no picture within the limits needs a larger file)."
        )
    return data


# Each file is read as one request of one image: under the decode limits (and, as a number, the read budget) of
# `limits`, with the file's size capped at `limits.max_decoded_bytes`. Only reading the file can make it
# `unreadable_file`: an OSError from the reading itself (LiteRT, NumPy) is a bug, `internal`.
def read_file(classifier: Classifier, path: str, numbers: bool, limits: NumberLimits = DEFAULT_LIMITS) -> dict:
    """One file's answer, as the API would give it: a digit's (or a number's) fields, or {"error": {code, message}}."""
    try:
        data = read_bytes(path, limits.max_decoded_bytes)
    except RecognitionError as error:
        return error_answer(error.code, error.message)
    except OSError as error:
        return error_answer(UNREADABLE_FILE, f"The file cannot be read: {error.strerror or error}.")
    try:
        if numbers:
            return number_answer(classifier.read_number(data, limits))
        return classifier.read_digit(data, limits).as_dict()
    except RecognitionError as error:
        return error_answer(error.code, error.message)
    except Exception as error:  # a bug, as the API's 500: this file's row says so, and the others are still read
        logger.exception("reading %s failed", path)
        return error_answer(INTERNAL, f"Reading the file failed unexpectedly ({type(error).__name__}).")


# Ctrl-C is the parent's to handle. The networks are loaded quietly: LiteRT announces its CPU delegate on the standard
# error, over the progress bar. A failure is kept for the first file to report: raised here, it would break the pool as
# a crash does.
def start_worker(limits: NumberLimits, model_path: str | Path = DEFAULT_MODEL_PATH) -> None:
    """A pool process's start: its limits set, the networks loaded once."""
    global _classifier, _limits, _load_failure
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limits = limits
    try:
        with _quiet_stderr():
            _classifier = Classifier.load(model_path, runtime=RUNTIME)
    except Exception as error:
        _load_failure = f"{type(error).__name__}: {error}"


def read_in_worker(path: str, numbers: bool) -> dict:
    """`read_file` in a pool process, with its classifier and limits; NetworksUnavailable when it has none."""
    if _classifier is None:
        raise NetworksUnavailable(_load_failure or "the pool's initializer did not run")
    return read_file(_classifier, path, numbers, _limits)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """The process's standard error (file descriptor 2, where native libraries write) sent to nowhere for a while."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# A few files per worker are queued ahead, so that every worker stays busy and memory stays flat. Should a file end its
# process (a crash in a native decoder), the pool breaks: the files it had finished keep their answers, and the others
# it held are read again one at a time in a pool of one, where a file that ends its process again gets an `internal`
# row; then a fresh pool reads on. A process that dies while it starts, before it reads a file (the networks' loading
# crashed), stops the run with NetworksUnavailable, as a load that fails does.
def read_in_order(
    read: Callable[..., dict],
    paths: Iterable[str],
    arguments: tuple,
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple,
) -> Iterator[tuple[str, dict]]:
    """(path, answer) for each path, in order, read by `read(path, *arguments)` in a pool of `workers` processes."""
    context = multiprocessing.get_context("spawn")  # nothing inherited from the parent's threads (tqdm's monitor)

    def new_pool(size: int) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=size, mp_context=context, initializer=initializer, initargs=initargs
        )

    remaining = iter(paths)
    # each path with its future, or None where the pool had broken before it could be handed over
    queued: collections.deque[tuple[str, concurrent.futures.Future | None]] = collections.deque()
    started = False  # whether a pool process has started and answered: the initializer works
    pool = new_pool(workers)
    try:
        while True:
            for path in itertools.islice(remaining, workers * QUEUED_PER_WORKER - len(queued)):
                queued.append((path, _submit(pool, read, path, arguments)))
                if queued[-1][1] is None:
                    break
            if not queued:
                return
            path, future = queued[0]
            if not _broke(future):
                queued.popleft()
                answer = future.result()  # an exception `read` raised is the caller's (NetworksUnavailable)
                started = True
                yield path, answer
                continue
            again = list(queued)
            queued.clear()
            pool.shutdown(wait=True)
            pool = new_pool(1)
            started = started or any(not _broke(future) for _, future in again) or _starts(pool)
            for path, future in again:
                if not _broke(future):  # finished before the pool broke: kept, not read again
                    yield path, future.result()
                    continue
                try:
                    answer = pool.submit(read, path, *arguments).result()
                except BrokenProcessPool:
                    logger.error("reading %s ended its process", path)
                    answer = error_answer(INTERNAL, "Reading the file ended the process that read it.")
                    pool.shutdown(wait=True)
                    pool = new_pool(1)
                yield path, answer
            pool.shutdown(wait=True)
            pool = new_pool(workers)
    finally:
        # queued files dropped, the running ones (bounded by the limits) awaited: not waiting leaves Python 3.11's exit
        # handler writing to the closed pool's pipe ("Bad file descriptor")
        pool.shutdown(wait=True, cancel_futures=True)


def _submit(
    pool: concurrent.futures.ProcessPoolExecutor, read: Callable[..., dict], path: str, arguments: tuple
) -> concurrent.futures.Future | None:
    """`read(path, *arguments)` handed to the pool; None when the pool has broken (a process died since the last look)."""
    try:
        return pool.submit(read, path, *arguments)
    except BrokenProcessPool:
        return None


def _broke(future: concurrent.futures.Future | None) -> bool:
    """Whether a file's reading was lost to a broken pool (waiting for it to finish or fail), not answered."""
    return future is None or isinstance(future.exception(), BrokenProcessPool)


def _starts(pool: concurrent.futures.ProcessPoolExecutor) -> bool:
    """True when a process of the pool starts and runs a task; NetworksUnavailable when starting ends it."""
    try:
        pool.submit(_started).result()
    except BrokenProcessPool:
        raise NetworksUnavailable("loading them ended the process that loaded them (a crash, not an error)") from None
    return True


def _started() -> None:
    """A task that does nothing: whether a fresh pool process gets as far as running it."""


class RowWriter:
    """Rows of answers written as CSV (with a header) or JSON Lines, one per file, flushed as they come."""

    def __init__(self, output: IO[str], output_format: str, numbers: bool) -> None:
        self.output = output
        self.format = output_format
        self.numbers = numbers
        self.csv = csv.writer(output, lineterminator="\n") if output_format == "csv" else None
        if self.csv is not None:
            self.csv.writerow(NUMBER_COLUMNS if numbers else DIGIT_COLUMNS)

    def write(self, path: str, answer: dict) -> None:
        """One file's row."""
        if self.csv is not None:
            self.csv.writerow(csv_row(path, answer, self.numbers))
        else:
            # ASCII only: a file name that is not UTF-8 (kept by Python as lone surrogates) is still valid JSON
            self.output.write(json.dumps({"file": path, **answer}) + "\n")
        self.output.flush()


def csv_row(path: str, answer: dict, numbers: bool) -> list[Any]:
    """One file's CSV row: its answer's columns (true/false as in JSON, lines joined by spaces), or its error's."""
    error = answer.get("error")
    if error is not None:
        blanks = [""] * (len(NUMBER_COLUMNS if numbers else DIGIT_COLUMNS) - 3)
        return [path, *blanks, error["code"], error["message"]]
    if numbers:
        return [path, answer["number"], " ".join(answer["lines"]), "", ""]
    return [path, answer["digit"], answer["confidence"], "true" if answer["is_digit"] else "false", "", ""]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m model.offline_reader",
        description=(
            "Read image files offline with the service's decoding, networks and limits: one row per file, in input "
            "order, with the digit (or number) or the error the API would answer. Folders are read for their image "
            f"files ({', '.join(sorted(image_suffixes()))}; hidden ones left out), sorted by name; files named on the "
            "command line or in --files-from are read whatever their name."
        ),
        epilog="Exit status: "
        + "; ".join(f"{status}: {meaning}" for status, meaning in EXIT_STATUSES.items())
        + ". See docs/OFFLINE.md.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="image files and folders to read")
    parser.add_argument(
        "--files-from",
        metavar="LIST",
        help="also read the files named in LIST, one path per line ('-': the standard input); a folder there is an "
        "error row, not walked",
    )
    parser.add_argument("-r", "--recursive", action="store_true", help="read folders' subfolders too")
    parser.add_argument(
        "--numbers",
        action="store_true",
        help="read each file as a number (as POST /recognize/number.json), not one digit (as POST /recognize.json)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="csv",
        help=f"csv: columns {','.join(DIGIT_COLUMNS)} (with --numbers: {','.join(NUMBER_COLUMNS)}); jsonl: one JSON "
        "object a line, the API's answer with 'file' added (default: csv)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the rows to FILE (default: the standard output)")
    parser.add_argument(
        "-j",
        "--workers",
        type=_positive,
        default=default_workers(),
        metavar="N",
        help="processes reading files at once, each with the networks loaded (110-200 MB each; default: one per core "
        "this process may use, as many as its memory holds, container limits included: %(default)s here)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on the standard error (default: when it is a terminal)",
    )
    arguments = parser.parse_args(argv)
    if not arguments.paths and arguments.files_from is None:
        parser.error("name at least one PATH, or --files-from LIST")
    return arguments


def _positive(text: str) -> int:
    """A whole number of at least 1, for --workers."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def _listed_files(list_path: str) -> list[str]:
    """The paths of a --files-from list, one a line (blank ones left out), bytes that are not UTF-8 kept."""
    if list_path == "-":
        listing = sys.stdin.buffer.read()
    else:
        with open(list_path, "rb") as file:
            listing = file.read()
    return [os.fsdecode(line) for line in listing.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    """Read the files named on the command line and write their rows; the exit status says whether all were read."""
    logging.basicConfig(level=logging.WARNING, format="offline_reader: %(message)s")
    arguments = parse_arguments(argv)
    # one thread per process for NumPy's OpenBLAS, as the service's workers (web/__init__.py): the pool is the parallelism
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        files = list_files(arguments.paths, arguments.recursive)
        if arguments.files_from is not None:
            files += _listed_files(arguments.files_from)
    except OSError as error:
        print(f"offline_reader: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if not files:
        print("offline_reader: no files to read (no image files in the folders, nothing listed)", file=sys.stderr)
        return EXIT_NO_FILES
    try:
        failed = _write_rows(files, arguments)
    except NetworksUnavailable as error:
        print(f"offline_reader: cannot load the networks: {error}", file=sys.stderr)
        return EXIT_NO_NETWORKS
    except KeyboardInterrupt:
        print("offline_reader: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of the output went away (| head): say nothing more, and let Python's own flush at exit not fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    if failed:
        print(f"offline_reader: {failed} of {len(files)} files not read (see their rows)", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_ALL_READ


def _write_rows(files: list[str], arguments: argparse.Namespace) -> int:
    """Read the files in a pool and write their rows in order, with the progress bar; how many rows are errors."""
    if arguments.output:
        output = open(arguments.output, "w", encoding="utf-8", errors="surrogateescape", newline="")
    else:
        output = sys.stdout
        output.reconfigure(errors="surrogateescape")  # file names that are not UTF-8 written back as they were
    workers = min(arguments.workers, max(1, len(files)))
    answers = read_in_order(read_in_worker, files, (arguments.numbers,), workers, start_worker, (DEFAULT_LIMITS,))
    failed = 0
    with (
        output if output is not sys.stdout else contextlib.nullcontext(),
        contextlib.closing(answers),
        tqdm(total=len(files), unit="file", file=sys.stderr, disable=_progress_hidden(arguments.progress)) as bar,
    ):
        writer = RowWriter(output, arguments.format, arguments.numbers)
        for path, answer in answers:
            writer.write(path, answer)
            failed += "error" in answer
            bar.update()
    return failed


def _progress_hidden(progress: bool | None) -> bool | None:
    """tqdm's `disable`: None hides the bar when the standard error is not a terminal."""
    return None if progress is None else not progress


if __name__ == "__main__":
    sys.exit(main())
