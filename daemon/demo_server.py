"""The embedded IMAP server of ``madoguchi demo``.

pymap's in-memory "dict" backend, served on 127.0.0.1 by a private asyncio loop in a thread:
unlike a subprocess it starts in milliseconds (no second interpreter importing pymap), knows
its port without parsing output, and stops on an event rather than a signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from argparse import Namespace
from asyncio import StreamReader, StreamWriter
from dataclasses import dataclass
from typing import Any, cast

from imapclient import IMAPClient
from proxyprotocol.reader import ProxyProtocolReader
from proxyprotocol.sock import SocketInfo
from pymap.backend.dict import Config, Login
from pymap.concurrent import Subsystem
from pymap.imap import IMAPServer
from pymap.user import UserMetadata
from pysasl.hashing import Cleartext

HOST = "127.0.0.1"
_TIMEOUT = 10.0


@dataclass(frozen=True)
class DemoAccount:
    """Where and as whom to log in to a running :class:`DemoServer` (plain IMAP, no TLS)."""

    host: str
    port: int
    username: str
    password: str


class _Config(Config):
    @property
    def greeting(self) -> bytes:
        # pymap's default calls socket.getfqdn() on every connection: a DNS lookup.
        return b"madoguchi demo IMAP server ready"


class _WholeResponses:
    """pymap's StreamWriter, sending each response in one piece, flushed by pymap's drain().

    pymap writes a response in many small sends; imapclient's idle_check() aborts with
    "unterminated line" when it reads half a line (mjs/imapclient#519).
    """

    def __init__(self, writer: StreamWriter) -> None:
        self._writer = writer
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self._pending += data

    async def drain(self) -> None:
        self._writer.write(bytes(self._pending))
        self._pending.clear()
        await self._writer.drain()

    def __getattr__(self, name: str) -> Any:  # close(), get_extra_info(), ...
        return getattr(self._writer, name)


class DemoServer:
    """Context manager: an in-memory IMAP4rev1 server (pymap dict backend) on 127.0.0.1.

    It has one user, no demo data, and the folders INBOX and Drafts. Everything is lost on exit.
    """

    def __init__(self, username: str = "demo", password: str = "demo") -> None:
        self._username, self._password = username, password
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._account: DemoAccount | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> DemoAccount:
        if self._thread is not None:
            raise RuntimeError("a DemoServer can be entered only once")
        self._thread = threading.Thread(target=self._run, name="madoguchi-demo-imap", daemon=True)
        self._thread.start()
        try:
            if not self._ready.wait(_TIMEOUT) or self._account is None:
                raise RuntimeError("the demo IMAP server did not start") from self._error
            with self._client() as client:
                client.create_folder("Drafts")  # pymap starts with INBOX only
        except BaseException:
            self._shut_down()
            raise
        return self._account

    def __exit__(self, *exc: object) -> None:
        self._shut_down()
        if self._error is not None and exc[0] is None:
            raise RuntimeError("the demo IMAP server failed") from self._error

    def append(self, folder: str, raw: bytes) -> None:
        """Deliver *raw* into *folder*, unflagged.

        It goes over IMAP APPEND from a separate session, as real delivery would, so that
        clients IDLE-ing on the folder are told EXISTS.
        """
        with self._client() as client:
            client.append(folder, raw)

    def _client(self) -> IMAPClient:
        account = self._account
        if account is None:
            raise RuntimeError("the DemoServer is not running")
        client = IMAPClient(account.host, port=account.port, ssl=False, timeout=_TIMEOUT)
        try:
            client.login(account.username, account.password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def _shut_down(self) -> None:
        self._account = None
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(_TIMEOUT)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # kept for __enter__/__exit__, not lost in the thread
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        config = _Config(
            Namespace(passlib_cfg=None, proxy_protocol=None),
            host=HOST, port=0,
            tls_enabled=False,  # LOGIN without STARTTLS; acceptable on loopback only
            ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),  # else reads $CERT_FILE
            hash_context=Cleartext(),  # default: 500 000 PBKDF2 rounds (~0.3 s) per LOGIN
            cpu_subsystem=Subsystem.for_asyncio(),  # default: a thread pool never shut down
            demo_data=False, demo_user=self._username, demo_password=self._password,
        )  # fmt: skip
        config.apply_context()
        login = Login(config)
        user = UserMetadata(config, self._username, password=self._password)
        await login.demo_user_identity.set(user)
        imap = IMAPServer(login, config)

        async def serve(reader: StreamReader, writer: StreamWriter, info: SocketInfo) -> None:
            await imap(reader, cast(StreamWriter, _WholeResponses(writer)), info)

        handler = ProxyProtocolReader(config.proxy_protocol).get_callback(serve)
        server = await asyncio.start_server(handler, HOST, 0)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        port: int = server.sockets[0].getsockname()[1]
        self._account = DemoAccount(HOST, port, self._username, self._password)
        self._ready.set()
        async with server:  # closes the listening socket on the way out
            await self._stop.wait()
        # Python 3.11's Server.wait_closed() does not wait for open connections: end them here
        # (pymap says BYE and closes) so that no socket or task outlives the loop.
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the closed transports run connection_lost
