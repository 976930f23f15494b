"""A throwaway Dovecot IMAP server for integration tests (a plain module: no pytest in here).

All of it lives under one root: ``etc/`` (dovecot.conf, a passwd-file per user), ``tls/`` (a
throwaway CA and a certificate for 127.0.0.1 and localhost), ``mail/<user>/Maildir``, ``run/``
(base_dir), ``state/`` and ``log/``.  Dovecot runs in the foreground as a child of the test process,
on 127.0.0.1 only: ``port`` is plain IMAP with STARTTLS (plaintext LOGIN allowed too), ``tls_port``
implicit TLS.  IDLE, UIDPLUS, MOVE and SPECIAL-USE are on; Drafts, Sent, Trash and Junk exist,
subscribed, with their special-use flags.  Separator ``.``; at most 10 connections per user+IP.
Run as root, mail belongs to the ``dovecot`` user, and o+x is added to root and its ancestors
inside the temp dir; run as anyone else, everything runs as that user.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template


@dataclass(frozen=True)
class Account:
    host: str
    port: int  # plain IMAP, STARTTLS available
    tls_port: int  # implicit TLS (IMAPS)
    username: str
    password: str
    ca_file: Path  # the CA that signed the server certificate


# "; " separates lines, to keep Dovecot's one-setting-a-line sections short here
_CONFIG = Template("""\
base_dir = $root/run
state_dir = $root/state
log_path = $root/log/dovecot.log
instance_name = dovecot-test-$port
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$root/tls/server.pem
ssl_key = <$root/tls/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
default_login_user = $login_user
default_internal_user = $internal_user
default_internal_group = $internal_group
first_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:~/Maildir
# Quota counts messages, and a user has a limit only where add_user() gives one
mail_plugins = quota
protocol imap {; mail_plugins = $$mail_plugins imap_quota; }
plugin {; quota = count:User quota; quota_vsizes = yes; }
passdb {; driver = passwd-file; args = scheme=PLAIN $root/etc/users/%u; }
userdb {; driver = passwd-file; args = $root/etc/users/%u; }
namespace inbox {; inbox = yes
  mailbox Drafts {; special_use = \\Drafts; auto = subscribe; }
  mailbox Sent {; special_use = \\Sent; auto = subscribe; }
  mailbox Trash {; special_use = \\Trash; auto = subscribe; }
  mailbox Junk {; special_use = \\Junk; auto = subscribe; }
}
# Failed logins answer within 0.5 s and, with the anvil-auth-penalty socket disabled, do not
# slow down every later login from 127.0.0.1 (by up to 15 s, for half a minute).
auth_failure_delay = 0
service anvil {; unix_listener anvil-auth-penalty {; mode = 0; }; chroot =; }
# chroot needs root, and the services work the same without it
service ipc {; chroot =; }
service old-stats {; chroot =; }
service imap-login {; chroot =
  inet_listener imap {; address = 127.0.0.1; port = $port; }
  inet_listener imaps {; address = 127.0.0.1; port = $tls_port; ssl = yes; }
}
""".replace("; ", "\n"))


@contextlib.contextmanager
def server_folder(name: str, keep: Callable[[], bool] = lambda: False) -> Iterator[Path]:
    """A folder for a test server's files in the system's temp dir, not pytest's: a pytest
    session that starts meanwhile makes /tmp/pytest-of-<user> private again (mode 0700), and
    as root that shuts Dovecot's own user out of its files. Removed afterwards, unless keep()
    says otherwise (a test failed: the files are for the post-mortem)."""
    root = Path(tempfile.mkdtemp(prefix=f"madoguchi-{name}-"))
    try:
        yield root
    finally:
        if keep():
            print(f"\n{name}: its files are kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def find_binary() -> str | None:
    """The ``dovecot`` binary (in /usr/sbin, which a normal user's PATH may lack)."""
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    """A port below Linux's ephemeral range, so no client socket takes it during a restart."""
    while True:
        port = random.randrange(20000, 32768)
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port


def _run(*args: str | Path, data: bytes | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], input=data, capture_output=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{args} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode()


class Dovecot:
    host = "127.0.0.1"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.conf, self.users = self.root / "etc/dovecot.conf", self.root / "etc/users"
        self.ca_file, self.log_path = self.root / "tls/ca.pem", self.root / "log/dovecot.log"
        me = pwd.getpwuid(os.geteuid())
        # Dovecot runs neither logins nor mail access as root: use Debian's users then
        mail, login = (pwd.getpwnam("dovecot"), "dovenull") if me.pw_uid == 0 else (me, me.pw_name)
        self.uid, self.gid = mail.pw_uid, mail.pw_gid
        group = grp.getgrgid(mail.pw_gid).gr_name
        self._users = dict(login_user=login, internal_user=mail.pw_name, internal_group=group)
        self.port = self.tls_port = 0  # chosen at the first start(), kept by restart()
        self._proc: subprocess.Popen[bytes] | None = None

    def _prepare(self) -> None:
        for sub in ("etc/users", "tls", "mail", "run", "state", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the dovecot user must reach etc/users and mail/
            tmp = Path(tempfile.gettempdir()).resolve()
            inside = [p for p in self.root.parents if p != tmp and p.is_relative_to(tmp)]
            for d in (self.root / "etc", self.root, *inside):
                d.chmod(d.stat().st_mode | stat.S_IXOTH)
        for d in (self.root / "mail", self.users):
            os.chown(d, self.uid, self.gid)
        self.users.chmod(0o700)
        if not self.ca_file.exists():
            self._make_certs()
        while not self.port or self.tls_port in (0, self.port):
            self.port, self.tls_port = self.port or _free_port(), _free_port()
        self.conf.write_text(_CONFIG.substitute(
            root=self.root, port=self.port, tls_port=self.tls_port, uid=self.uid, gid=self.gid,
            **self._users))

    def _make_certs(self) -> None:
        tls, ext = self.root / "tls", "-addext"
        new = ("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-noenc", "-days", "30")
        _run(*new, "-keyout", tls / "ca.key", "-out", self.ca_file, "-subj", "/CN=Dovecot test CA",
             ext, "basicConstraints=critical,CA:TRUE", ext, "keyUsage=critical,keyCertSign,cRLSign")
        _run(*new, "-keyout", tls / "server.key", "-out", tls / "server.pem", "-CA", self.ca_file,
             "-CAkey", tls / "ca.key", "-subj", "/CN=localhost",
             ext, "subjectAltName=IP:127.0.0.1,DNS:localhost", ext, "extendedKeyUsage=serverAuth",
             ext, "basicConstraints=critical,CA:FALSE", ext, "keyUsage=critical,digitalSignature")

    def start(self, timeout: float = 15.0) -> None:
        """Start Dovecot; return once it greets on ``port``."""
        binary = find_binary()
        if binary is None:
            raise RuntimeError("the `dovecot` binary is missing: install dovecot-imapd")
        if self._proc is not None:
            raise RuntimeError("Dovecot is already running")
        self._prepare()
        with open(self.root / "log/stderr.log", "ab") as err:
            self._proc = subprocess.Popen(
                [binary, "-F", "-c", str(self.conf)], stdin=subprocess.DEVNULL, stdout=err,
                stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self._proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), timeout=timeout) as s:
                if s.recv(200).startswith(b"* OK"):
                    s.sendall(b"a LOGOUT\r\n")
                    s.recv(200)
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"Dovecot did not start:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM to the master and all its children, as systemd does (KillMode=control-group).

        Clients get ``* BYE Server shutting down.`` (SIGTERM to the master alone would leave
        logged-in imap processes running).  Whatever is left after 2 s gets SIGKILL.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:  # not reaped, so its pid cannot be reused as a group id
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 2  # the master waits ~1 s for children; anvil can hang
            while time.monotonic() < deadline and not os.waitid(
                    os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                time.sleep(0.01)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping users and mail."""
        self.stop()
        self.start()

    def add_user(self, username: str, password: str, *, max_messages: int | None = None) -> Account:
        """Add a user with an empty INBOX (plus the special-use folders); usable at once.
        With `max_messages`, the server refuses to store more than that many (all folders)."""
        # Dovecot lower-cases logins and allows only these characters in them by default
        if not re.fullmatch(r"[a-z0-9_.@-]+", username) or re.search(r"[:\s]", password):
            raise ValueError("need a username of [a-z0-9_.@-] and a password without ':'")
        if not self.port:
            self._prepare()
        home = self.root / "mail" / username
        home.mkdir()
        os.chown(home, self.uid, self.gid)
        # a passwd-file per user, as Dovecot re-reads a changed one only once a second
        entry = self.users / username
        quota = f"userdb_quota_rule=*:messages={max_messages}" if max_messages else ""
        entry.write_text(f"{username}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{home}::{quota}\n")
        os.chown(entry, self.uid, self.gid)
        return Account(self.host, self.port, self.tls_port, username, password, self.ca_file)

    def doveadm(self, *args: str, data: bytes | None = None) -> str:
        return _run("doveadm", "-c", self.conf, *args, data=data)

    def deliver(self, username: str, raw: bytes, folder: str = "INBOX") -> None:
        """Put ``raw`` into an existing ``folder`` as a delivery would (``doveadm save``).

        It arrives unseen and \\Recent; an IDLE client hears EXISTS ~0.5 s later.
        """
        self.doveadm("save", "-u", username, "-m", folder, data=raw)

    def reset_uidvalidity(self, username: str, folder: str = "INBOX") -> None:
        """Raise ``folder``'s UIDVALIDITY by one.  Its mails are KEPT, with the same UIDs.

        A client with the folder selected gets ``* BYE IMAP session state is inconsistent,
        please relogin.`` at its next command (an IDLE client hears nothing until then).
        """
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", username, "uidvalidity", folder)
        new = int(out.strip().partition("=")[2]) + 1
        self.doveadm("mailbox", "update", "-u", username, "--uid-validity", str(new), folder)

    def log_text(self) -> str:
        """Dovecot's log, then anything it wrote to stderr (errors before logging is set up)."""
        logs = (self.log_path, self.root / "log/stderr.log")
        return "".join(p.read_text(errors="replace") for p in logs if p.exists())
