"""The gunicorn worker the service runs: gunicorn's sync worker, guarded against slow clients and overload.

- Slow clients: a connection has REQUEST_READ_TIMEOUT seconds (default 10) from its accept to
  deliver its whole request. A read past that deadline sees the end of the stream, so a client
  that trickles its bytes holds a worker that long at most, and gunicorn never has to kill a
  worker stuck in a read (its own --timeout is 30 s).
- Overload: the connections that wait for a worker queue in the kernel, in the listening
  socket's accept queue that all the workers share. `waiting_per_worker()` reads its length, so
  the app can answer 503 with Retry-After when the queue is full instead of letting every
  request wait longer and longer.
"""

import os
import socket
import struct
import time

from gunicorn.workers.sync import SyncWorker

# Seconds a connection has to deliver its request (head and body), from REQUEST_READ_TIMEOUT.
DEFAULT_READ_TIMEOUT = 10.0
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


class DeadlineSocket(socket.socket):
    """A client connection whose reads end at a deadline: past it, a read returns b"" (end of stream)."""

    read_deadline = 0.0
    write_timeout = DEFAULT_READ_TIMEOUT

    @classmethod
    def guard(cls, connection: socket.socket, read_seconds: float) -> "DeadlineSocket":
        """Take over an accepted connection: its request must arrive within `read_seconds`."""
        guarded = cls(connection.family, connection.type, connection.proto, fileno=connection.detach())
        guarded.read_deadline = time.monotonic() + read_seconds
        guarded.write_timeout = read_seconds
        return guarded

    def recv(self, size: int, flags: int = 0) -> bytes:
        """Bytes as they arrive, or b"" once the deadline has passed."""
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


class GuardedSyncWorker(SyncWorker):
    """gunicorn's sync worker with a read deadline per connection and a view of the accept queue."""

    def init_process(self) -> None:
        """Before the app loads: remember the listening socket and the number of workers, and the deadline."""
        global _listener, _workers
        _listener, _workers = self.sockets[0].sock, max(1, self.cfg.workers)
        self.read_timeout = float(os.environ.get("REQUEST_READ_TIMEOUT", DEFAULT_READ_TIMEOUT))
        super().init_process()

    def accept(self, listener) -> None:
        """Accept one connection and answer it, its reads bounded by the deadline."""
        client, address = listener.accept()
        client.setblocking(True)
        self.handle(listener, DeadlineSocket.guard(client, self.read_timeout), address)
