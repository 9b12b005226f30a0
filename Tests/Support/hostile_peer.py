#!/usr/bin/env python3
"""A hostile peer for attack tests: an HTTP server on 127.0.0.1 that answers
every request (whatever its path, so it can pose as an expert host, a state
donor, an averager or a DHT node) the way its --mode says, then prints the
ready line `{"url": "http://127.0.0.1:PORT"}` that ServiceProcess reads.

Modes:
  endless   200 with no length, then zeros until the caller hangs up
  huge      200 announcing a 1 GiB body, then zeros until the caller hangs up
  status0   a status line with the status 000
  secret    503 with a body that is not JSON and holds a secret
  jsonsecret 503 with a JSON error whose message holds a secret
  range     206 announcing `Content-Range: bytes 0-N/1099511627776` (a 1 TB state), then zeros
  headers   200 with the Authorization header it received, as JSON (null if none)
"""
import argparse
import json
import socketserver
import sys
import threading

SECRET = b"root:x:0:0:SECRET-FROM-UPSTREAM"


class Handler(socketserver.StreamRequestHandler):
    mode = "endless"

    def handle(self) -> None:
        try:
            while True:
                request_line = self.rfile.readline(65536)
                if not request_line:
                    return
                length = 0
                self.authorization = None
                while True:
                    line = self.rfile.readline(65536)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                    if name.strip().lower() == "authorization":
                        self.authorization = value.strip()
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        return
                    remaining -= len(chunk)
                if not self.answer():
                    return
        except (ConnectionError, OSError):
            return

    def answer(self) -> bool:
        """Writes one answer; returns whether the connection may serve another."""
        write = self.wfile.write
        if self.mode == "status0":
            write(b"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\n{}")
            return True
        if self.mode == "secret":
            write(b"HTTP/1.1 503 Unavailable\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(SECRET), SECRET))
            return True
        if self.mode == "headers":
            body = json.dumps({"authorization": self.authorization}).encode()
            write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            return True
        if self.mode == "jsonsecret":
            body = json.dumps({"error": {"code": "bad\nCODE", "message": SECRET.decode()}}).encode()
            write(b"HTTP/1.1 503 Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            return True
        if self.mode == "huge":
            write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % (1 << 30))
        elif self.mode == "range":
            write(b"HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Range: bytes 0-1099511627775/1099511627776\r\nContent-Length: 1099511627776\r\n\r\n")
        else:
            write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
        zeros = bytes(1 << 16)
        while True:
            write(zeros)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="endless")
    parser.add_argument("--host", default="127.0.0.1")
    arguments = parser.parse_args()
    Handler.mode = arguments.mode
    server = Server((arguments.host, 0), Handler)
    print(json.dumps({"event": "listening", "url": "http://%s:%d" % (arguments.host, server.server_address[1])}), flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
