"""A self-signed certificate for loopback TLS servers in tests."""
from __future__ import annotations

import datetime
import ipaddress
import time
from pathlib import Path


def self_signed_certificate(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` for 127.0.0.1, valid for an hour, written in ``folder``.

    The certificate names 127.0.0.1 as its subject and its IP address, so a
    client that trusts it (``cacert``) verifies the server; it may also
    serve as a client certificate that the server trusts.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


class TLSProxy:
    """An HTTPS front of a plain HTTP server on 127.0.0.1 (a TLS-terminating proxy).

    Serves ``cert``/``key`` on a free port; with ``client_ca`` it requires
    a client certificate signed by it. Each request is read whole, sent to
    ``upstream`` (``http://127.0.0.1:PORT``) and its answer sent back, with
    ``Host`` kept so that the upstream's links name the proxy. ``requests``
    counts the requests forwarded, ``refused`` the TLS handshakes that
    failed. Use as a context manager.
    """

    def __init__(self, upstream: str, cert: Path, key: Path, *,
                 client_ca: Path | None = None) -> None:
        import http.server
        import ssl
        import threading

        import requests

        self.upstream = upstream.rstrip("/")
        self.requests = 0
        self.refused = 0
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        proxy = self
        forward = requests.Session()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "content-length")}
                answer = forward.request(self.command, proxy.upstream + self.path,
                                         headers=headers, data=body, timeout=60,
                                         allow_redirects=False)
                proxy.requests += 1
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("connection", "keep-alive", "content-length",
                                            "transfer-encoding", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):  # the handshake, in the serving thread
                sock, address = self.socket.accept()
                sock.settimeout(30)
                try:
                    return context.wrap_socket(sock, server_side=True), address
                except (OSError, ssl.SSLError):
                    proxy.refused += 1
                    sock.close()
                    raise

        self._server = Server(("127.0.0.1", 0), Handler)
        self._forward = forward
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def saw_refusal(self, bound: float = 60.0) -> bool:
        """Whether a handshake was refused, waiting up to ``bound`` seconds: the
        serving thread counts it after the client has already seen it fail."""
        deadline = time.monotonic() + bound
        while not self.refused and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.refused > 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "TLSProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._forward.close()
