"""A small, misbehaving HTTP server on 127.0.0.1 for download tests; it never reaches the network.

    with FaultyServer({"/set.zip": ("truncate", body)}) as server:
        url = server.url("/set.zip")
        ...
        server.routes["/set.zip"] = ("ok", body)   # the next request succeeds

Each route is (behaviour, argument):
    ("ok", body)            200 with Content-Length
    ("status", code)        that status and an empty body
    ("truncate", body)      Content-Length of the whole body, half of it sent, connection closed
    ("close_early", body)   no Content-Length, half the body, connection closed (looks complete)
    ("drop", body)          chunked, half the body, then the connection is reset mid-transfer
    ("stall", seconds)      accepts the request and sends nothing for `seconds`
    ("stall_mid", body)     headers and half the body, then nothing until the server stops

The server runs in a daemon thread on a free port, stops when the `with` block ends, and
stops by itself after `lifetime` seconds in any case; stalled handlers wake up when it stops.
"""

from __future__ import annotations

import http.server
import socket
import struct
import threading

STALL_LIMIT = 10.0  # no handler waits longer than this, whatever its route says


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _head(self, code=200, length=None, chunked=False):
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        with server.lock:
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
            kind, arg = server.routes.get(self.path, ("status", 404))
        if kind == "status":
            self._head(arg, length=0)
        elif kind == "stall":
            server.stopping.wait(min(arg, STALL_LIMIT))
            self.close_connection = True
        elif kind == "ok":
            self._head(length=len(arg))
            self.wfile.write(arg)
        elif kind == "truncate":
            self._head(length=len(arg))
            self.wfile.write(arg[: len(arg) // 2])
        elif kind == "close_early":
            self._head()
            self.wfile.write(arg[: len(arg) // 2])
        elif kind == "stall_mid":
            self._head(length=len(arg))
            self.wfile.write(arg[: len(arg) // 2])
            self.wfile.flush()
            server.stopping.wait(STALL_LIMIT)
        elif kind == "drop":
            self._head(chunked=True)
            half = arg[: len(arg) // 2]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
            self.wfile.flush()
            # SO_LINGER 0: closing sends a reset instead of an orderly end of stream
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            raise ValueError(f"unknown behaviour {kind!r}")


class FaultyServer:
    """An HTTP server on 127.0.0.1 whose routes misbehave on purpose (see the module docstring)."""

    def __init__(self, routes: dict | None = None, *, lifetime: float = 60.0):
        self.routes = dict(routes or {})
        self.lifetime = lifetime

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    @property
    def hits(self) -> dict:
        return self._server.hits

    def __enter__(self) -> "FaultyServer":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.routes, server.hits, server.lock = self.routes, {}, threading.Lock()
        server.stopping = threading.Event()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._watchdog = threading.Timer(self.lifetime, self._stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def _stop(self):
        self._server.stopping.set()
        self._server.shutdown()

    def __exit__(self, *exc):
        self._watchdog.cancel()
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
