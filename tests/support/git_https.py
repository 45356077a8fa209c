"""A real git remote over https: git's own CGI (`git http-backend`) behind a TLS server that asks for
HTTP Basic credentials the way a forge does (401 with `WWW-Authenticate: Basic`).

Only the TLS front and the password check are ours; everything git says is `git http-backend`'s.
The certificate is self-signed for 127.0.0.1; give git its file as `SSL_CERT_FILE`.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost (the certificate is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class GitHttpsServer:
    """Repositories under `root`, served at `url(name)`; `seen` holds every Authorization header sent."""

    root: Path
    port: int
    cert: Path
    username: str
    password: str
    seen: list[str] = field(default_factory=list)

    def url(self, name: str, *, with_credentials: bool = False) -> str:
        userinfo = f"{self.username}:{self.password}@" if with_credentials else ""
        return f"https://{userinfo}127.0.0.1:{self.port}/{name}"

    def authorized_requests(self) -> int:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return sum(1 for header in self.seen if header == expected)


def _handler(server: GitHttpsServer) -> type[BaseHTTPRequestHandler]:
    backend = Path(subprocess.check_output(["git", "--exec-path"], text=True).strip()) / "git-http-backend"
    expected = "Basic " + base64.b64encode(f"{server.username}:{server.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            sent = self.headers.get("Authorization", "")
            server.seen.append(sent)
            if sent != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self._body()
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ["PATH"],
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "REMOTE_USER": server.username,  # an authenticated user may push (http.receivepack)
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            done = subprocess.run([str(backend)], input=body, env=env, capture_output=True, check=False)
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    return Handler


def serve_git_https(folder: Path, *, username: str, password: str) -> Iterator[GitHttpsServer]:
    """Serve bare repositories kept under `folder / "repos"` until the generator is closed."""
    root = folder / "repos"
    root.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(folder)
    info = GitHttpsServer(root, 0, cert, username, password)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(info))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    info.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def serve_seeded_repository(folder: Path, *, username: str, password: str) -> Iterator[GitHttpsServer]:
    """`serve_git_https` holding `x.git`, a bare repository whose `main` has one commit."""
    for server in serve_git_https(folder / "https", username=username, password=password):
        bare = server.root / "x.git"
        _git("init", "-q", "--bare", "--initial-branch=main", str(bare))
        seed = folder / "seed"
        _git("init", "-q", "--initial-branch=main", str(seed))
        (seed / "README.md").write_text("hello\n")
        _git("-C", str(seed), "add", "-A")
        _git("-C", str(seed), "-c", "user.name=S", "-c", "user.email=s@e", "commit", "-qm", "init")
        _git("-C", str(seed), "push", "-q", str(bare), "main")
        yield server


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)
