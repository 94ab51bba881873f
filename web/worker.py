"""The gunicorn worker the service runs: gunicorn's sync worker, guarded against slow clients and overload.

- Slow clients: a sync worker answers one connection at a time, so a client that sends its
  request slowly would hold it, and a few such clients would hold them all. Here a worker
  takes a connection's request only once it has arrived in full: its head, then its body as
  long as Content-Length says, or a chunked body up to its last chunk and trailers (the chunk
  framing is followed as the bytes come, each byte looked at once). A connection whose request
  is not all there within FIRST_WAIT is parked: the worker goes on answering others and reads
  the parked ones as their bytes come (at most MAX_PARKED of them, holding at most
  PARKED_UPLOADS uploads' worth of bytes; past either limit one is answered at once with what
  it sent). Each has REQUEST_READ_TIMEOUT seconds (default 10) from its accept; then it is
  answered with what it sent (408 for a body cut short) or closed. A body over the upload limit
  counts as arrived (the app refuses it with 413), and a malformed chunked body is answered 400
  by the worker as soon as it is seen.
- Expect: 100-continue: answered with `100 Continue` as soon as the head is in (when the
  declared body is within the limit), so a client such as curl sends its body at once; the
  `100 Continue` gunicorn would send after reading the body is swallowed (DeadlineSocket).
- Overload: the connections that wait for a worker queue in the kernel, in the listening
  socket's accept queue that all the workers share. `waiting_per_worker()` reads its length, so
  the app can answer 503 with Retry-After when the queue is full, instead of letting every
  request wait longer and longer.
- gunicorn's own answers (a bad request line or header, a URI or headers too long, an
  unsupported transfer coding, an application failure) are written in the API's JSON error
  shape (web/errors.py) instead of gunicorn's HTML pages.
- gunicorn's hard time limit (--timeout): when the master aborts a worker stuck in a request,
  the client gets a JSON 504 worker_timeout, the metric digits_worker_timeouts_total counts it
  and an ERROR line names the request and its duration.
- Logs: every answer the worker writes itself gets the request's one logfmt line, as the app's
  (web/logs.py `log_request`), with its error code: the method and path only where they were
  read and checked, never the client's other text nor a parser's complaint (which quotes it).
- Exit (SIGTERM on a deploy or restart, the time limit, max requests): the request in flight
  is finished; then every parked connection and, on shutdown, every connection still waiting
  in the accept queue is answered 503 overloaded with Retry-After (the service is restarting),
  and closed without a reset, before the worker exits.
"""

import logging
import re
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

from gunicorn.http.body import Body, ChunkedReader
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ObsoleteFolding,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from web.access import request_id, request_id_from
from web.errors import RETRY_AFTER_SECONDS, raw_error_response, status_of
from web.logs import log_request, log_value
from web.settings import DEFAULT_READ_TIMEOUT, current_settings

# How long a worker waits for a new connection's request before parking it as a slow client.
FIRST_WAIT = 0.05
# Parked connections per worker at most; past that the oldest is answered with what it has.
MAX_PARKED = 16
# Bytes the parked connections of a worker may hold, in uploads of MAX_UPLOAD_BYTES; past that the
# fullest is answered with what it has (so memory stays bounded whatever the clients do).
PARKED_UPLOADS = 2
# A request head this long without its blank line is handed to gunicorn's parser, which refuses it.
MAX_HEAD_BYTES = 64 * 1024
# Bytes read from a parked connection at a time.
READ_CHUNK = 64 * 1024
# A chunk size line (hex size and extensions) longer than this is malformed (gunicorn's own limit).
MAX_CHUNK_SIZE_LINE = 8190
# A chunked body's trailer section longer than this, or with more fields, is malformed.
MAX_TRAILER_BYTES = 64 * 1024
MAX_TRAILER_FIELDS = 100
# After the worker answers a connection itself, it reads (and drops) what the client still sends
# for this long at most, without waiting for it, so that closing does not reset the answer away.
FAREWELL_LINGER = 2.0
# Connections being closed that way at once at most; past that the oldest is closed at once.
MAX_FAREWELLS = 256
# Bytes the worker reads from a closing connection at most before closing it anyway.
FAREWELL_MAX_BYTES = 1024 * 1024
# Seconds kept in hand before the master's graceful timeout ends, when answering on the way out.
EXIT_MARGIN = 1.0
# Connections taken from the accept queue in one pass on the way out (the pass repeats while time is left).
MAX_DRAIN_PASS = 1024
# What a request's log line says of a method or path that was not read (or did not read cleanly).
NOT_READ = "-"
HEAD_END = b"\r\n\r\n"
CRLF = b"\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
# Chunked when the last coding of a Transfer-Encoding field is chunked (else gunicorn refuses the head).
CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*\bchunked[ \t]*(?=\r\n)", re.IGNORECASE)
EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)
# A request line as the log takes it from bytes gunicorn has not parsed: a method of capitals and an origin-form
# target of visible ASCII (RFC 9112 section 3), else neither is logged.
REQUEST_LINE = re.compile(rb"([A-Z]{3,20}) (/[!-~]*) HTTP/1\.[01]\r\n")
X_REQUEST_ID = re.compile(rb"\r\nx-request-id:[ \t]*([!-~]*?)[ \t]*(?=\r\n)", re.IGNORECASE)
# RFC 9112 section 7.1: chunk-size = 1*HEXDIG; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ),
# the name a token, the value a token or a quoted-string (RFC 9110 section 5.6).
HEX_SIZE = re.compile(rb"[0-9A-Fa-f]+")
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
CHUNK_EXTENSION = re.compile(rb"(?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|%s))?)*" % (TOKEN, TOKEN, QUOTED_STRING))
# A trailer field line: a name, a colon and a value of visible characters, spaces and tabs.
TRAILER_FIELD = re.compile(rb"(%s):[\t\x20-\x7e\x80-\xff]*" % TOKEN)
# Fields that must not be sent as trailers (RFC 9110 section 6.5.1: framing, routing, request
# modifiers, authentication, content metadata): a chunked body carrying one is malformed.
FORBIDDEN_TRAILERS = frozenset(
    {
        b"authorization",
        b"cache-control",
        b"content-encoding",
        b"content-length",
        b"content-range",
        b"content-type",
        b"cookie",
        b"expect",
        b"host",
        b"if-match",
        b"if-modified-since",
        b"if-none-match",
        b"if-range",
        b"if-unmodified-since",
        b"max-forwards",
        b"pragma",
        b"proxy-authorization",
        b"range",
        b"set-cookie",
        b"te",
        b"trailer",
        b"transfer-encoding",
    }
)
# Linux's struct tcp_info starts with 8 one-byte fields, then 32-bit ones; on a listening socket
# its 5th 32-bit field (tcpi_unacked) is the number of connections waiting to be accepted.
TCP_INFO_HEAD = "8B5I"
TCP_INFO_SIZE = struct.calcsize(TCP_INFO_HEAD)
# gunicorn's refusals, by the parser's exception: the API's error code and the message the client gets.
REFUSALS: tuple[tuple[type | tuple[type, ...], str, str], ...] = (
    (LimitRequestLine, "uri_too_long", "The request line (the path and query) is longer than the server reads."),
    (LimitRequestHeaders, "headers_too_large", "The request's headers are more or longer than the server reads."),
    (
        UnsupportedTransferCoding,
        "not_implemented",
        "The request's Transfer-Encoding is not one the server reads: send the body as is, or chunked.",
    ),
    (ExpectationFailed, "expectation_failed", "The only Expect the server meets is 'Expect: 100-continue'."),
    (ForbiddenProxyRequest, "forbidden", "This address may not send a PROXY protocol line."),
    (
        (InvalidChunkSize, ChunkMissingTerminator, InvalidChunkExtension),
        "bad_request",
        "The chunked body is malformed (a bad chunk size line or extension, or chunk data not followed by CRLF).",
    ),
    (
        (InvalidRequestLine, InvalidRequestMethod, InvalidHTTPVersion),
        "bad_request",
        "The request line is malformed (its method, target or HTTP version).",
    ),
    (
        (InvalidHeader, InvalidHeaderName, ObsoleteFolding),
        "bad_request",
        "A header is malformed, repeated where it may appear once, or contradicts another "
        "(Content-Length with Transfer-Encoding).",
    ),
    (ParseException, "bad_request", "The request is malformed."),
)

# The listening socket and the number of workers, set in each worker process by GuardedSyncWorker.
_listener: socket.socket | None = None
_workers = 1


def accept_queue_length(listener: socket.socket) -> int | None:
    """How many connections wait in a listening TCP socket's accept queue (Linux), None where unknown."""
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
    except (OSError, AttributeError):  # not TCP (a unix socket), or not Linux
        return None
    return struct.unpack(TCP_INFO_HEAD, info)[-1]


def waiting_per_worker() -> float | None:
    """Connections waiting for a worker, per worker; None outside GuardedSyncWorker or where unknown."""
    if _listener is None:
        return None
    waiting = accept_queue_length(_listener)
    return None if waiting is None else waiting / _workers


def logged_path(target: str | None) -> str:
    """A request's path as the app logs it (percent-decoded, without query or fragment); NOT_READ without one."""
    path = (target or "").partition("?")[0].partition("#")[0]
    return unquote(path, errors="replace") or NOT_READ


def parsed_request(req) -> tuple[str, str]:
    """The method and path of a request gunicorn's parser read and checked; NOT_READ where it gave up before."""
    if req is None or not getattr(req, "method", None):
        return NOT_READ, NOT_READ
    return req.method, logged_path(req.path)


def read_request_line(received: bytes | bytearray) -> tuple[str, str, str | None]:
    """The method, path and plain X-Request-ID of a request's first bytes where they read cleanly (NOT_READ, None)."""
    line = REQUEST_LINE.match(received)
    method, path = (NOT_READ, NOT_READ) if line is None else (line[1].decode(), logged_path(line[2].decode()))
    head_end = received.find(HEAD_END)
    ids = X_REQUEST_ID.findall(received[: head_end + 2] if head_end >= 0 else received)
    return method, path, request_id_from(ids[0].decode()) if len(ids) == 1 else None


def chunk_size(line: bytes) -> int | None:
    """The size a chunk size line announces (hex, optionally followed by extensions), or None if it is malformed."""
    size, semicolon, extensions = line.partition(b";")
    if semicolon:
        size = size.rstrip(b" \t")  # white space is allowed before extensions only
        if not CHUNK_EXTENSION.fullmatch(semicolon + extensions):
            return None
    return int(size, 16) if HEX_SIZE.fullmatch(size) else None


def trailer_problem(section: bytes) -> str | None:
    """What is wrong with a chunked body's trailer section (its field lines, without the final CRLF), or None."""
    lines = section.split(CRLF)
    if len(lines) > MAX_TRAILER_FIELDS:
        return "too many trailer fields"
    for line in lines:
        field_line = TRAILER_FIELD.fullmatch(line)
        if field_line is None:
            return "a trailer field is malformed"
        if field_line.group(1).lower() in FORBIDDEN_TRAILERS:
            return "a trailer field may not be sent as a trailer"
    return None


class ChunkedProgress:
    """How far a chunked body has arrived, following its framing as bytes come: each byte is looked at once.

    RFC 9112 section 7.1: chunks of a hex size line (with optional ;extensions) ending in CRLF, that
    many bytes and CRLF; then a 0 size line, trailer fields and a final CRLF. `complete` once the
    last CRLF is in or once more than `max_body` bytes of data came (the app refuses the body);
    `error` says why the framing is malformed.
    """

    SIZE_LINE, DATA, DATA_END, TRAILERS = range(4)

    def __init__(self, start: int, max_body: int) -> None:
        self.max_body = max_body
        self.position = start  # the first byte of the framing not yet taken in
        self.searched = start  # where the search for the current line's end resumes
        self.state = self.SIZE_LINE
        self.left = 0  # bytes of the current chunk's data still to come
        self.decoded = 0  # bytes of data so far
        self.complete = False
        self.error: str | None = None

    def update(self, received: bytes | bytearray) -> None:
        """Take in the bytes received since the last call (`received` is all the request's bytes so far)."""
        while not (self.complete or self.error) and self.step(received):
            pass

    def step(self, received: bytes | bytearray) -> bool:
        """Take in one piece of the framing; False when the bytes for it have not all arrived."""
        available = len(received) - self.position
        if self.state == self.SIZE_LINE:
            return self.size_line(received)
        if self.state == self.DATA:
            taken = min(self.left, available)
            if taken == 0:
                return False
            self.position += taken
            self.left -= taken
            self.decoded += taken
            if self.decoded > self.max_body:
                self.complete = True  # over the limit: the app answers 413 from what it reads
            elif self.left == 0:
                self.state = self.DATA_END
            return True
        if self.state == self.DATA_END:
            end = bytes(received[self.position : self.position + 2])
            if end != CRLF[: len(end)]:
                self.error = "chunk data is not followed by CRLF"
            elif len(end) < 2:
                return False
            else:
                self.position = self.searched = self.position + 2
                self.state = self.SIZE_LINE
            return True
        return self.trailers(received)

    def size_line(self, received: bytes | bytearray) -> bool:
        """Take in a chunk size line once its CRLF is in."""
        end = received.find(CRLF, self.searched)
        if end < 0 or end - self.position > MAX_CHUNK_SIZE_LINE:
            if len(received) - self.position > MAX_CHUNK_SIZE_LINE:
                self.error = "a chunk size line is too long"
                return True
            self.searched = max(self.position, len(received) - 1)  # a CR at the end may be followed by its LF
            return False
        size = chunk_size(bytes(received[self.position : end]))
        if size is None:
            self.error = "a chunk size line is not a hexadecimal size with valid extensions"
            return True
        self.position = self.searched = end + 2
        self.state, self.left = (self.DATA, size) if size else (self.TRAILERS, 0)
        return True

    def trailers(self, received: bytes | bytearray) -> bool:
        """Take in the trailer section after the last chunk: optional field lines, then CRLF."""
        if len(received) - self.position < 2:
            return False
        if received[self.position : self.position + 2] == CRLF:
            self.complete = True
            return True
        end = received.find(HEAD_END, self.searched)
        if end < 0:
            if len(received) - self.position > MAX_TRAILER_BYTES:
                self.error = "the trailer section is too long"
                return True
            self.searched = max(self.position, len(received) - 3)
            return False
        self.error = trailer_problem(bytes(received[self.position : end]))
        self.complete = self.error is None
        return True


class RequestProgress:
    """How much of a request has arrived, decided from its bytes as they come, without reading them again."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.head_end = -1  # where the body starts, once the head is in
        self.head_searched = 0  # where the search for the head's end resumes
        self.declared: int | None = None  # the Content-Length
        self.chunks: ChunkedProgress | None = None
        self.expects_continue = False  # an HTTP/1.1 head with Expect: 100-continue and a body to wait for
        self.complete = False
        self.error: str | None = None  # why the chunked body is malformed

    @property
    def settled(self) -> bool:
        """Whether there is nothing more to wait for: the request is in, over the limit, or malformed."""
        return self.complete or self.error is not None

    def update(self, received: bytes | bytearray) -> None:
        """Take in the bytes received since the last call (`received` is all the request's bytes so far)."""
        if self.settled:
            return
        if self.head_end < 0:
            found = received.find(HEAD_END, self.head_searched)
            if found < 0:
                self.head_searched = max(0, len(received) - len(HEAD_END) + 1)
                self.complete = len(received) > MAX_HEAD_BYTES  # gunicorn's parser refuses an overlong head
                return
            self.head_end = found + len(HEAD_END)
            self.read_head(bytes(received[: found + 2]))
            if self.complete:
                return
        if self.chunks is not None:
            self.chunks.update(received)
            self.complete, self.error = self.chunks.complete, self.chunks.error
        else:
            self.complete = len(received) - self.head_end >= self.declared

    def read_head(self, head: bytes) -> None:
        """Note how the body is framed; a head gunicorn refuses, or one with no body, needs nothing more."""
        lengths = CONTENT_LENGTH.findall(head)
        chunked = CHUNKED.search(head) is not None
        http_11 = head[: head.find(CRLF)].endswith(b" HTTP/1.1")
        if len(lengths) > 1 or (chunked and (lengths or not http_11)) or not (lengths or chunked):
            self.complete = True
        elif chunked:
            self.chunks = ChunkedProgress(self.head_end, self.max_body)
        else:
            self.declared = int(lengths[0])
            self.complete = self.declared > self.max_body  # the app refuses it from the head alone
        self.expects_continue = http_11 and not self.complete and EXPECT_CONTINUE.search(head) is not None


def request_is_complete(received: bytes | bytearray, max_body: int) -> bool:
    """Whether the worker need wait for no more bytes: a whole request, a body over `max_body`, or a bad one.

    A body is whole once it is as long as Content-Length says, or, chunked, once its last chunk
    and trailers are in. A body over `max_body` (the app refuses it), an overlong head (gunicorn
    refuses it) and a malformed chunked body (the worker refuses it) need no more bytes either.
    """
    progress = RequestProgress(max_body)
    progress.update(received)
    return progress.settled


class DeadlineSocket(socket.socket):
    """A client connection that first hands out the bytes already read, and whose reads end at a deadline.

    Past the deadline a read returns b"", the end of the stream: gunicorn then drops a request
    whose head is incomplete, and the app answers 408 to a body cut short. gunicorn's own
    `100 Continue` is swallowed: the worker sent it when the head arrived, or chose not to.
    """

    read_deadline = 0.0
    write_timeout = DEFAULT_READ_TIMEOUT
    unread = b""

    @classmethod
    def guard(
        cls, connection: socket.socket, deadline: float, received: bytes, write_timeout: float
    ) -> "DeadlineSocket":
        """Take over an accepted connection, with the bytes already received from it."""
        guarded = cls(connection.family, connection.type, connection.proto, fileno=connection.detach())
        guarded.read_deadline, guarded.unread, guarded.write_timeout = deadline, received, write_timeout
        return guarded

    def recv(self, size: int, flags: int = 0) -> bytes:
        """The bytes already received first, then bytes as they arrive, or b"" once the deadline has passed."""
        if self.unread:
            data, self.unread = self.unread[:size], self.unread[size:]
            return data
        remaining = self.read_deadline - time.monotonic()
        if remaining <= 0:
            return b""
        self.settimeout(remaining)
        try:
            return super().recv(size, flags)
        except TimeoutError:
            return b""

    def send(self, data: bytes, flags: int = 0) -> int:
        """Send bytes, except gunicorn's late `100 Continue` (the worker answered the expectation itself)."""
        if data == CONTINUE:
            return len(data)
        self.settimeout(self.write_timeout)
        return super().send(data, flags)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        """Send the answer; a client that does not read it for write_timeout seconds is dropped."""
        self.settimeout(self.write_timeout)
        super().sendall(data, flags)


class BufferedReader:
    """A request body already read in full, for gunicorn's Body in place of its chunked reader."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def read(self, size: int) -> bytes:
        """Up to `size` bytes of the body, b"" at its end."""
        piece = self.data[self.position : self.position + size]
        self.position += len(piece)
        return piece


@dataclass
class Arrival:
    """A connection whose request is still arriving."""

    connection: socket.socket
    address: tuple
    deadline: float
    progress: RequestProgress
    received: bytearray = field(default_factory=bytearray)
    continued: bool = False  # whether the worker has sent it `100 Continue`
    accepted: float = field(default_factory=time.monotonic)

    def read_available(self) -> bool:
        """Read what has arrived without waiting; False once the client has closed its side or failed."""
        try:
            while True:
                try:
                    data = self.connection.recv(READ_CHUNK)
                except BlockingIOError:
                    return True
                except OSError:
                    return False
                if not data:
                    return False
                self.received += data
        finally:
            self.progress.update(self.received)


@dataclass
class Farewell:
    """A connection the worker has answered itself and half-closed: what the client still sends is read and dropped."""

    connection: socket.socket
    ends: float
    drained: int = 0

    def drain(self) -> bool:
        """Read and drop what has arrived, without waiting; False once the client has closed or it is time to close."""
        while self.drained < FAREWELL_MAX_BYTES:
            try:
                data = self.connection.recv(READ_CHUNK)
            except BlockingIOError:
                return time.monotonic() < self.ends
            except OSError:
                return False
            if not data:
                return False
            self.drained += len(data)
        return False


def read_what_arrived(connection: socket.socket, limit: int) -> bytes:
    """Read and drop up to `limit` bytes a client has sent, without waiting (unread bytes at close reset the answer);
    the first piece read (the request's head, usually)."""
    read, first = 0, b""
    while read < limit:
        try:
            data = connection.recv(READ_CHUNK)
        except OSError:  # nothing more now (BlockingIOError), or the client is gone
            break
        if not data:
            break
        first = first or data
        read += len(data)
    return first


def refused_or_failed(log: logging.Logger, exc: BaseException, request_id: str) -> tuple[str, str]:
    """The error code and message for what gunicorn's parser refused (REFUSALS), or `internal` for a failure (logged)."""
    if not isinstance(exc, ParseException) or isinstance(
        exc, (InvalidResponseHeader, InvalidResponseHeaderName, ConfigurationProblem)
    ):
        log.exception("Error handling request %s", request_id, exc_info=exc)
        return "internal", "Something went wrong on our side; it has been logged."
    # the class only: the parser's message quotes what the client sent
    log.debug("Request %s refused by the parser: %s", request_id, type(exc).__name__)
    return next((code, message) for kinds, code, message in REFUSALS if isinstance(exc, kinds))


def answer_error(
    log: logging.Logger, client: socket.socket, req, code: str, message: str, headers: dict, seconds: float
) -> None:
    """Write an error answer in the API's JSON shape to the socket, and the request's one log line (web/logs.py)."""
    method, path = parsed_request(req)
    log_request(method, path, status_of(code), seconds, headers["X-Request-ID"], f" code={code}")
    try:
        client.sendall(raw_error_response(code, message, headers))
    except Exception:  # the client is gone
        log.debug("Failed to send error message.")


def new_request_id(headers: list[tuple[str, str]] | None = None) -> str:
    """The client's X-Request-ID if it sent a plain one, else a new id (as the app names requests)."""
    return request_id(dict(headers or ()).get("X-REQUEST-ID"))


class GuardedSyncWorker(SyncWorker):
    """gunicorn's sync worker that takes a request only once it has arrived, shows the accept queue, answers in JSON."""

    def init_process(self) -> None:
        """Before the app loads: note the listening socket, the number of workers and the deadlines."""
        global _listener, _workers
        _listener, _workers = self.sockets[0].sock, max(1, self.cfg.workers)
        self.read_timeout = current_settings()["REQUEST_READ_TIMEOUT"]
        self.max_body = current_settings()["MAX_CONTENT_LENGTH"]  # MAX_UPLOAD_BYTES
        self.parked: list[Arrival] = []
        self.farewells: list[Farewell] = []
        self.base_wait_fds = None
        self.shutting_down = False  # SIGTERM, or the master is gone: the queued connections are answered too
        self.exit_requested_at: float | None = None
        self.timed_out = False  # the master aborted this worker for passing its time limit
        self.request_started = self.request_accepted = time.monotonic()
        super().init_process()

    # --- taking requests in ---

    def accept(self, listener) -> None:
        """Accept a connection and answer it once its request is in; park it if that takes longer than FIRST_WAIT."""
        connection, address = listener.accept()
        connection.setblocking(False)
        arrival = Arrival(connection, address, time.monotonic() + self.read_timeout, RequestProgress(self.max_body))
        first_wait_ends = time.monotonic() + FIRST_WAIT
        while self.take_in(arrival) and not arrival.progress.settled:
            remaining = first_wait_ends - time.monotonic()
            if remaining <= 0 or not select.select([connection], [], [], remaining)[0]:
                self.park(listener, arrival)
                return
        self.answer(listener, arrival)

    def take_in(self, arrival: Arrival) -> bool:
        """Read what a connection has sent, and send `100 Continue` once its head asks for it; False once it is gone."""
        still_open = arrival.read_available()
        if still_open and arrival.progress.expects_continue and not arrival.continued and not arrival.progress.settled:
            arrival.continued = True
            try:
                arrival.connection.send(CONTINUE)  # a few bytes into an empty send buffer: never blocks
            except OSError:
                return False
        return still_open

    def park(self, listener, arrival: Arrival) -> None:
        """Keep a slow connection aside; if there are too many, the oldest is answered now with what it sent."""
        self.parked.append(arrival)
        if len(self.parked) > MAX_PARKED:
            self.answer_now(listener, self.parked[0])

    def answer_now(self, listener, arrival: Arrival) -> None:
        """Answer a parked connection with what it has sent, without waiting for the rest (408, or closed)."""
        arrival.deadline = time.monotonic()
        self.answer(listener, arrival)

    def bound_parked_bytes(self, listener) -> None:
        """While the parked connections hold more than PARKED_UPLOADS uploads' worth, answer the fullest now."""
        while self.parked and sum(len(arrival.received) for arrival in self.parked) > PARKED_UPLOADS * self.max_body:
            self.answer_now(listener, max(self.parked, key=lambda arrival: len(arrival.received)))

    def answer(self, listener, arrival: Arrival) -> None:
        """Let gunicorn parse and answer the request from the bytes received, the rest bounded by the deadline.

        A malformed chunked body is refused here (400), and a chunked body cut short by the deadline
        or the parking limits too (408): gunicorn's reader would fail on either inside the app.
        """
        if arrival in self.parked:
            self.parked.remove(arrival)
        progress = arrival.progress
        if progress.error is not None:
            message = f"The chunked body is malformed: {progress.error}."  # the worker's own words, no client text
            answered = self.refuse(arrival.connection, "bad_request", message, None, arrival.received, arrival.accepted)
            self.log.debug("Request %s refused: %s", answered, message)
            return
        if progress.chunks is not None and not progress.complete:
            message = (
                f"The request body did not arrive in full within {self.read_timeout:g} seconds "
                f"({progress.chunks.decoded:,} bytes of a chunked body)."
            )
            answered = self.refuse(
                arrival.connection, "request_timeout", message, None, arrival.received, arrival.accepted
            )
            self.log.debug("Request %s refused: %s", answered, message)
            return
        arrival.connection.setblocking(True)
        guarded = DeadlineSocket.guard(arrival.connection, arrival.deadline, bytes(arrival.received), self.read_timeout)
        self.request_started = time.monotonic()
        self.request_accepted = arrival.accepted
        self.handle(listener, guarded, arrival.address)

    def handle_request(self, listener, req, client, addr) -> None:
        """gunicorn's request handling, with a chunked body decoded first (its errors are then answered in JSON)."""
        if isinstance(req.body.reader, ChunkedReader):
            # in memory already (the worker waited for it): decoding it here, rather than while the app
            # reads it, lets a framing error reach handle_error as a 400 instead of failing the app (500)
            req.body = Body(BufferedReader(req.body.read(self.max_body + 1)))
        try:
            super().handle_request(listener, req, client, addr)
        except StopIteration:  # the answer had begun when it failed: gunicorn closes the connection
            if self.timed_out:
                client_id = request_id_from(dict(req.headers).get("X-REQUEST-ID"))
                self.note_timeout(req, "the answer was cut", client_id or NOT_READ)
            raise

    def wait(self, timeout: float) -> list:
        """Wait for new connections and for the parked ones' bytes; answer those complete or past their deadline."""
        if self.base_wait_fds is None:
            self.base_wait_fds = list(self.wait_fds)
        ends = [arrival.deadline for arrival in self.parked] + [farewell.ends for farewell in self.farewells]
        if ends:
            timeout = max(0.0, min(timeout, min(ends) - time.monotonic()))
        self.wait_fds = (
            self.base_wait_fds
            + [arrival.connection for arrival in self.parked]
            + [farewell.connection for farewell in self.farewells]
        )
        try:
            ready = super().wait(timeout) or []
        finally:
            self.wait_fds = self.base_wait_fds
        self.see_off(ready)
        now = time.monotonic()
        listener = self.sockets[0]
        for arrival in list(self.parked):
            still_open = arrival.connection not in ready or self.take_in(arrival)
            if arrival.progress.settled or (still_open and now >= arrival.deadline):
                self.answer(listener, arrival)
            elif not still_open:
                self.parked.remove(arrival)  # the client went away before sending its whole request
                arrival.connection.close()
        self.bound_parked_bytes(listener)
        return [ready_fd for ready_fd in ready if ready_fd in self.base_wait_fds]

    # --- answers the worker writes itself ---

    def refuse(
        self,
        connection: socket.socket,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        received: bytes | bytearray = b"",
        accepted: float | None = None,
    ) -> str:
        """Answer a connection with an error in the API's shape and log it, then close it gently, without waiting.

        `received` is what the worker has read of the request (else what has arrived is read now), `accepted` when;
        the request's id (the client's plain X-Request-ID, else a new one) is returned.
        """
        started = time.monotonic() if accepted is None else accepted
        connection.setblocking(False)
        arrived = read_what_arrived(connection, FAREWELL_MAX_BYTES)
        method, path, client_id = read_request_line(received or arrived)
        answered = client_id or request_id(None)
        answer = raw_error_response(code, message, {"X-Request-ID": answered, **(headers or {})})
        log_request(method, path, status_of(code), time.monotonic() - started, answered, f" code={code}")
        try:
            connection.sendall(answer)  # a few hundred bytes into a send buffer that holds at most `100 Continue`
            connection.shutdown(socket.SHUT_WR)
        except OSError:  # the client is gone (or its window is shut): nothing to answer
            connection.close()
            return answered
        self.farewells.append(Farewell(connection, time.monotonic() + FAREWELL_LINGER))
        if len(self.farewells) > MAX_FAREWELLS:
            self.farewells.pop(0).connection.close()
        return answered

    def see_off(self, ready: list) -> None:
        """Read what the half-closed connections still receive; close those whose client closed or whose time is up."""
        now = time.monotonic()
        for farewell in list(self.farewells):
            done = not farewell.drain() if farewell.connection in ready else now >= farewell.ends
            if done:
                self.farewells.remove(farewell)
                farewell.connection.close()

    def handle_error(self, req, client, addr, exc: BaseException) -> None:
        """Answer what gunicorn refuses, or a request that failed or passed the time limit, in the API's JSON shape.

        gunicorn's own handle_error writes HTML pages and logs the parser's complaint, which quotes
        the client; this writes the shared error shape and the request's one log line (web/logs.py),
        with the traceback of a failure as an ERROR besides.
        """
        req = req or getattr(exc, "req", None)  # a bad header: the parser had read and checked the request line
        headers = {"X-Request-ID": new_request_id(getattr(req, "headers", None))}
        if isinstance(exc, SystemExit) and self.timed_out:
            code, message = (
                "worker_timeout",
                (f"The request took longer than the service's limit of {self.cfg.timeout} seconds and was stopped."),
            )
            self.note_timeout(req, "answered 504", headers["X-Request-ID"])
        elif isinstance(exc, SystemExit):  # a quick shutdown (SIGINT, SIGQUIT) in the middle of a request
            code, message = "overloaded", f"The service is restarting; try again in {RETRY_AFTER_SECONDS} s."
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            self.log.debug("Request %s stopped by a quick shutdown", headers["X-Request-ID"])
        else:
            code, message = refused_or_failed(self.log, exc, headers["X-Request-ID"])
        answer_error(self.log, client, req, code, message, headers, time.monotonic() - self.request_accepted)

    # --- the hard time limit ---

    def handle_abort(self, sig, frame) -> None:
        """The master aborts a worker past its time limit: note it, so that the request gets a 504, then exit."""
        self.timed_out = True
        # the master kills (SIGKILL) a worker still silent at its next check: tell it this one is answering
        self.notify()
        super().handle_abort(sig, frame)

    def note_timeout(self, req, outcome: str, request_id: str) -> None:
        """Log why the request ended (method, path, seconds) and count it in digits_worker_timeouts_total."""
        seconds = time.monotonic() - self.request_started
        method, path = parsed_request(req)
        self.log.error(
            "Request %s %s passed the %s s time limit after %.1f s (request_id=%s): %s; the worker restarts",
            log_value(method),
            log_value(path),
            self.cfg.timeout,
            seconds,
            request_id,
            outcome,
        )
        metrics = getattr(self.wsgi, "extensions", {}).get("metrics")
        if metrics is not None:
            try:
                metrics.worker_timeouts.inc()
            except Exception:  # a metric must not stop the answer
                self.log.exception("Could not count the worker timeout")

    # --- exit ---

    def handle_exit(self, sig, frame) -> None:
        """SIGTERM (a deploy, a restart): finish the request in flight, then answer the others 503 and exit."""
        self.shutting_down = True
        self.exit_requested_at = time.monotonic()
        super().handle_exit(sig, frame)

    def is_parent_alive(self) -> bool:
        """gunicorn's check; a worker whose master is gone shuts down as on SIGTERM."""
        alive = super().is_parent_alive()
        if not alive:
            self.shutting_down = True
        return alive

    def run(self) -> None:
        """gunicorn's loop, then, however it ends, an answer for every connection this worker still holds."""
        try:
            super().run()
        finally:
            self.answer_on_exit()

    def answer_on_exit(self) -> None:
        """Answer the parked connections and, on shutdown, those in the accept queue: 503, restarting, without resets.

        The kernel keeps the accept queue while any process holds the listening socket, and the
        master has closed its own: so each worker, on its way out, takes what is queued until
        the queue is empty, answers it, and reads what those clients still send for a while, so
        that closing does not reset the answer away. A connection that arrives after the last
        worker's last look and before it closes the socket is reset by the kernel: a window of
        a few milliseconds that no worker can close.
        """
        message = f"The service is restarting; try again in {RETRY_AFTER_SECONDS} s."
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        parked, queued = len(self.parked), 0
        for arrival in self.parked:
            self.refuse(arrival.connection, "overloaded", message, retry, arrival.received, arrival.accepted)
        self.parked = []
        ends = time.monotonic() + FAREWELL_LINGER
        if self.exit_requested_at is not None:
            ends = min(ends, self.exit_requested_at + self.cfg.graceful_timeout - EXIT_MARGIN)
        listeners = [listener.sock for listener in self.sockets] if self.shutting_down else []
        for listener in listeners:
            listener.setblocking(False)  # take what is queued, never wait for more
        while True:
            for listener in listeners:
                for _ in range(MAX_DRAIN_PASS):
                    try:
                        connection, _ = listener.accept()
                    except OSError:  # the queue is empty (BlockingIOError), or the socket is gone
                        break
                    queued += 1
                    self.refuse(connection, "overloaded", message, retry)
            if not self.farewells or time.monotonic() >= ends:
                break
            watched = [farewell.connection for farewell in self.farewells] + listeners
            try:
                ready = select.select(watched, [], [], max(0.0, ends - time.monotonic()))[0]
            except OSError:
                break
            self.see_off(ready)
        for farewell in self.farewells:
            farewell.connection.close()
        self.farewells = []
        if parked or queued:
            self.log.info("Worker exiting: answered 503 to %d parked and %d queued connections", parked, queued)


class GuardedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker (WEB_THREADS > 1) answering what it refuses or fails on in the API's JSON shape.

    gunicorn's own handle_error writes an HTML page and logs the parser's complaint, which quotes the client; this
    writes the shared error shape and the request's one log line, as the sync worker does. (The slow-client guards,
    the read deadline and the 504 on the time limit are the sync worker's: gthread has its own keep-alive handling.)
    """

    def handle_error(self, req, client, addr, exc: BaseException) -> None:
        """Answer a refusal or a failure in the API's JSON shape, with one log line and no client text."""
        req = req or getattr(exc, "req", None)  # a bad header: the parser had read and checked the request line
        headers = {"X-Request-ID": new_request_id(getattr(req, "headers", None))}
        code, message = refused_or_failed(self.log, exc, headers["X-Request-ID"])
        answer_error(self.log, client, req, code, message, headers, 0.0)  # gthread keeps no accept time
