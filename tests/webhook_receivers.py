"""Webhook receivers on real sockets for the egress tests: polite, hostile, slow.

Each receiver is an asyncio server on a loopback address and a free port that
records every request it was sent, so a test can assert that a refused delivery
never reached it. Replies are scripted per test; every loop in them is bounded.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Reply = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Receiver:
    host: str
    port: int
    requests: list[bytes] = field(default_factory=list)
    server_names: list[str] = field(default_factory=list)

    def url(self, host: str | None = None, path: str = "/hook") -> str:
        return f"http://{host or self.host}:{self.port}{path}"


def respond(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
    """A whole response at once."""
    # One response per connection, so every delivery opens (and checks) a new one.
    lines = [f"HTTP/1.1 {status} Status", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()

    return reply


def trickle(head: bytes, drip: bytes, interval: float, drops: int) -> Reply:
    """``head`` at once, then one byte of ``drip`` per interval, ``drops`` times at most."""

    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        await writer.drain()
        for index in range(drops):
            await asyncio.sleep(interval)
            writer.write(drip[index % len(drip) : index % len(drip) + 1])
            await writer.drain()

    return reply


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


@asynccontextmanager
async def receiver(
    reply: Reply, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Receiver]:
    """A server answering every request with ``reply``, stopped on exit."""
    state = Receiver(host, port)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            state.requests.append(await asyncio.wait_for(_read_request(reader), 5))
            await reply(writer)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the client hung up first, which is what several tests are about
        finally:
            writer.close()

    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: state.server_names.append(name or "")
    server = await asyncio.start_server(handle, host, port, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


def self_signed_tls(hostname: str, directory: Path) -> ssl.SSLContext:
    """A server TLS context with a self-signed certificate for ``hostname``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context
