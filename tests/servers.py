"""Real HTTP servers for download tests: a threaded mirror on 127.0.0.1 with Range support and faults."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Fault:
    """One injected fault; ``times`` requests are affected (None: every request)."""

    kind: str  # drop | flip | 404 | slow | ignore_range | body
    times: int | None = None
    after: int = 0  # drop: bytes sent before closing the connection
    delay: float = 0.0  # slow: seconds before answering
    body: bytes = b""  # body: served instead of the file


class Mirror:
    """A threaded HTTP server serving ``root`` under ``/pool/`` with Range support and per-path faults."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.faults: dict[str, list[Fault]] = {}
        self.log: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                rel = unquote(urlsplit(self.path).path).removeprefix("/pool/")
                kinds = mirror.take(rel, self.headers.get("Range"))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.serve(rel, kinds, self.headers.get("Range"))

            def serve(self, rel: str, kinds: dict[str, Fault], rng: str | None) -> None:
                if "slow" in kinds:
                    time.sleep(kinds["slow"].delay)
                path = mirror.root / rel
                if "404" in kinds or not path.is_file():
                    self.send_error(404)
                    return
                data = bytearray(kinds["body"].body if "body" in kinds else path.read_bytes())
                if "flip" in kinds:
                    data[len(data) // 2] ^= 0xFF
                start = 0
                if rng and "ignore_range" not in kinds:
                    match = re.fullmatch(r"bytes=(\d+)-", rng)
                    assert match, rng
                    start = int(match[1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                payload = bytes(data[start:])
                if "drop" in kinds:
                    payload = payload[:kinds["drop"].after]
                    self.close_connection = True
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False  # server_close() joins the handler threads
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pool/"

    def take(self, rel: str, rng: str | None) -> dict[str, Fault]:
        with self.lock:
            self.log.append((rel, rng))
            active: dict[str, Fault] = {}
            for fault in self.faults.get(rel, []):
                if fault.times is None or fault.times > 0:
                    active[fault.kind] = fault
                    if fault.times is not None:
                        fault.times -= 1
            return active

    def fault(self, rel: str, *faults: Fault) -> None:
        self.faults.setdefault(rel, []).extend(faults)

    def ranges(self, rel: str) -> list[str | None]:
        """Range headers of the requests for ``rel``, in order."""
        return [r for p, r in self.log if p == rel]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
