"""The gunicorn worker the service runs: gunicorn's sync worker, guarded against slow clients and overload.

- Slow clients: a sync worker answers one connection at a time, so a client that sends its
  request slowly would hold it, and a few such clients would hold them all. Here a worker
  takes a connection's request only once it has arrived in full. A connection whose request is
  not all there within FIRST_WAIT is parked: the worker goes on answering others and reads the
  parked ones as their bytes come (at most MAX_PARKED of them, holding at most PARKED_UPLOADS
  uploads' worth of bytes; past either limit one is answered at once with what it sent). Each
  has REQUEST_READ_TIMEOUT seconds (default 10) from its accept; then it is answered with what
  it sent (408 for a body cut short) or closed.
- Overload: the connections that wait for a worker queue in the kernel, in the listening
  socket's accept queue that all the workers share. `waiting_per_worker()` reads its length, so
  the app can answer 503 with Retry-After when the queue is full, instead of letting every
  request wait longer and longer.
"""

import os
import re
import select
import socket
import struct
import time
from dataclasses import dataclass, field

from gunicorn.workers.sync import SyncWorker

# Seconds a connection has to deliver its request (head and body): REQUEST_READ_TIMEOUT's default.
DEFAULT_READ_TIMEOUT = 10.0
# The largest request body: MAX_UPLOAD_BYTES's default (server.py reads the same variable).
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
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
HEAD_END = b"\r\n\r\n"
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)
# Linux's struct tcp_info starts with 8 one-byte fields, then 32-bit ones; on a listening socket
# its 5th 32-bit field (tcpi_unacked) is the number of connections waiting to be accepted.
TCP_INFO_HEAD = "8B5I"
TCP_INFO_SIZE = struct.calcsize(TCP_INFO_HEAD)

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


def request_is_complete(received: bytes | bytearray, max_body: int) -> bool:
    """Whether the bytes hold a whole HTTP request: its head, and its body as long as Content-Length says.

    A head that announces a chunked body, or a body over `max_body` (the app refuses it from
    the head alone), counts as complete once the head is there; so does an overlong head.
    """
    head_end = received.find(HEAD_END)
    if head_end < 0:
        return len(received) > MAX_HEAD_BYTES
    head = bytes(received[:head_end + 2])
    length = CONTENT_LENGTH.search(head)
    if length is None or CHUNKED.search(head):
        return True
    declared = int(length.group(1))
    return declared > max_body or len(received) - head_end - len(HEAD_END) >= declared


class DeadlineSocket(socket.socket):
    """A client connection that first hands out the bytes already read, and whose reads end at a deadline.

    Past the deadline a read returns b"", the end of the stream: gunicorn then drops a request
    whose head is incomplete, and the app answers 408 to a body cut short.
    """

    read_deadline = 0.0
    write_timeout = DEFAULT_READ_TIMEOUT
    unread = b""

    @classmethod
    def guard(cls, connection: socket.socket, deadline: float, received: bytes, write_timeout: float) -> "DeadlineSocket":
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

    def sendall(self, data: bytes, flags: int = 0) -> None:
        """Send the answer; a client that does not read it for write_timeout seconds is dropped."""
        self.settimeout(self.write_timeout)
        super().sendall(data, flags)


@dataclass
class Arrival:
    """A connection whose request is still arriving."""

    connection: socket.socket
    address: tuple
    deadline: float
    received: bytearray = field(default_factory=bytearray)

    def read_available(self) -> bool:
        """Read what has arrived without waiting; False once the client has closed its side or failed."""
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


class GuardedSyncWorker(SyncWorker):
    """gunicorn's sync worker that takes a request only once it has arrived, and shows the accept queue."""

    def init_process(self) -> None:
        """Before the app loads: note the listening socket, the number of workers and the deadlines."""
        global _listener, _workers
        _listener, _workers = self.sockets[0].sock, max(1, self.cfg.workers)
        self.read_timeout = float(os.environ.get("REQUEST_READ_TIMEOUT", DEFAULT_READ_TIMEOUT))
        self.max_body = int(os.environ.get("MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES))
        self.parked: list[Arrival] = []
        self.base_wait_fds = None
        super().init_process()

    def accept(self, listener) -> None:
        """Accept a connection and answer it once its request is in; park it if that takes longer than FIRST_WAIT."""
        connection, address = listener.accept()
        connection.setblocking(False)
        arrival = Arrival(connection, address, time.monotonic() + self.read_timeout)
        first_wait_ends = time.monotonic() + FIRST_WAIT
        while arrival.read_available() and not request_is_complete(arrival.received, self.max_body):
            remaining = first_wait_ends - time.monotonic()
            if remaining <= 0 or not select.select([connection], [], [], remaining)[0]:
                self.park(listener, arrival)
                return
        self.answer(listener, arrival)

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
        """Let gunicorn parse and answer the request from the bytes received, the rest bounded by the deadline."""
        if arrival in self.parked:
            self.parked.remove(arrival)
        arrival.connection.setblocking(True)
        guarded = DeadlineSocket.guard(arrival.connection, arrival.deadline, bytes(arrival.received), self.read_timeout)
        self.handle(listener, guarded, arrival.address)

    def wait(self, timeout: float):
        """Wait for new connections and for the parked ones' bytes; answer those complete or past their deadline."""
        if self.base_wait_fds is None:
            self.base_wait_fds = list(self.wait_fds)
        if self.parked:
            timeout = max(0.0, min(timeout, min(arrival.deadline for arrival in self.parked) - time.monotonic()))
        self.wait_fds = self.base_wait_fds + [arrival.connection for arrival in self.parked]
        try:
            ready = super().wait(timeout) or []
        finally:
            self.wait_fds = self.base_wait_fds
        now = time.monotonic()
        listener = self.sockets[0]
        for arrival in list(self.parked):
            still_open = arrival.connection not in ready or arrival.read_available()
            complete = request_is_complete(arrival.received, self.max_body)
            if not still_open and not complete:
                self.parked.remove(arrival)  # the client went away before sending its whole request
                arrival.connection.close()
            elif complete or now >= arrival.deadline:
                self.answer(listener, arrival)
        self.bound_parked_bytes(listener)
        return ready
