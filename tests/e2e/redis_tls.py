"""Redis over TLS for end-to-end tests: a throwaway CA with a server and a
client certificate (made by ``openssl``), and a private redis-server that
speaks only TLS and requires the client's certificate.

The service takes TLS settings in its ``rediss://`` URL, so every Redis client
it makes (requests, the pub/sub hub, locks, limits, RQ) gets them alike.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from redis import Redis
from redis.exceptions import RedisError

from testkit.procs import HOST, Proc, redis_server_binary, spawn, wait_until


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def url(self, port: int, db: int = 0) -> str:
        """What ``ESCALATIONS_REDIS_URL`` looks like for a TLS Redis with client certificates."""
        query = urlencode({
            "ssl_ca_certs": self.ca,
            "ssl_certfile": self.client_cert,
            "ssl_keyfile": self.client_key,
            "ssl_cert_reqs": "required",
        })  # fmt: skip
        return f"rediss://{HOST}:{port}/{db}?{query}"


def make_tls_files(directory: Path) -> TLSFiles:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, valid for two days."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    # Python 3.13 verifies strictly (ssl.VERIFY_X509_STRICT): a CA marked critical and
    # certificates that name their issuer's key, as a real CA issues them.
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=escalations test CA", "-keyout", ca_key, "-out", ca,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    files = TLSFiles(
        ca=ca,
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
    _issue(
        directory, "server", ca, ca_key, f"subjectAltName=IP:{HOST}\nextendedKeyUsage=serverAuth"
    )
    _issue(directory, "client", ca, ca_key, "extendedKeyUsage=clientAuth")
    return files


def _issue(directory: Path, name: str, ca: Path, ca_key: Path, extension: str) -> None:
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    extfile = directory / f"{name}.ext"
    extfile.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectKeyIdentifier=hash\n" + extension + "\n"
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", key, "-out", csr)  # fmt: skip
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-days", "2", "-extfile", extfile, "-out", cert)  # fmt: skip


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def start_tls_redis(port: int, *, tls: TLSFiles, log_dir: Path) -> Proc:
    """An in-memory redis-server on TLS port ``port`` only (no plain port), which
    refuses clients without a certificate from the CA; answering PING on return."""
    argv = [
        redis_server_binary(), "--bind", HOST, "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(tls.server_cert), "--tls-key-file", str(tls.server_key),
        "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "yes",
        "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    proc = spawn(f"redis-tls-{port}", argv, port=port, log_dir=log_dir)
    try:
        wait_until(lambda: _pings(tls.url(port)), proc=proc, what="PONG over TLS")
    except BaseException:
        proc.stop()
        raise
    return proc


def _pings(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()
