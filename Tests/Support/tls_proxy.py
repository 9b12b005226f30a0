#!/usr/bin/env python3
"""A relay between a service and a peer it calls, for the swarm tests.

--mode tls: a man in the middle. It ends the caller's TLS with a certificate
of its own, opens TLS to the target (checking nothing) and relays the bytes in
between, writing the request lines it read from callers to --stats.
--mode tcp: a plain TCP relay, which TLS passes end to end.

Prints one ready line, {"url": "https://127.0.0.1:PORT"}, then relays until killed.
"""
import argparse
import json
import socket
import ssl
import threading


METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ")


def pump(source, target, seen=None):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if seen is not None and data.startswith(METHODS):
                seen(data.split(b"\r\n", 1)[0].decode("latin-1"))
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="HOST:PORT")
    parser.add_argument("--mode", choices=["tls", "tcp"], required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--stats", help="file that receives the number of request bytes read from callers")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    lock = threading.Lock()

    def seen(line):
        with lock, open(args.stats, "a") as stats:
            stats.write(line + "\n")

    if args.stats:
        open(args.stats, "w").close()
    server_context = None
    if args.mode == "tls":
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(args.cert, args.key)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(json.dumps({"url": f"https://127.0.0.1:{listener.getsockname()[1]}"}), flush=True)

    def serve(client):
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
            upstream.settimeout(None)
            if args.mode == "tls":
                client = server_context.wrap_socket(client, server_side=True)
                upstream = client_context.wrap_socket(upstream)
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
            pump(client, upstream, seen if args.mode == "tls" and args.stats else None)
        except (OSError, ssl.SSLError):
            client.close()

    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
