"""The configuration: one TOML file, every setting declared once here with type, default and doc.

`config/example.toml` is generated from SETTINGS (`madoguchi check-config --print-example`), and a
test checks that the file in the repository matches, so the documentation cannot drift.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    type: type
    default: Any
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("imap", "host", str, "", "IMAP server host name."),
    Setting("imap", "port", int, 993, "IMAP port: 993 for implicit TLS, 143 for STARTTLS."),
    Setting("imap", "username", str, "", "Login name of the seller's mailbox."),
    Setting("imap", "security", str, "tls",
            'How to protect the connection: "tls" (implicit), "starttls", or "none" '
            "(allowed only for 127.0.0.1 / ::1 / localhost)."),
    Setting("imap", "verify_certificate", bool, True,
            "Verify the server's TLS certificate. Can be turned off only for localhost."),
    Setting("imap", "ca_file", str, "",
            "A CA bundle to verify the server with, instead of the system's (a private CA)."),
    Setting("imap", "auth", str, "password",
            'How to log in: "password" (LOGIN, with password_file / password_env / the systemd '
            'credential), or "xoauth2" / "oauthbearer" (SASL with an OAuth2 access token from '
            "[oauth]: Gmail and Microsoft 365, which turn plain passwords off)."),
    Setting("imap", "password_file", str, "", "File holding the password (first line)."),
    Setting("imap", "password_env", str, "", "Environment variable holding the password."),
    Setting("imap", "password_credential", str, "password",
            "Name of the systemd credential (LoadCredential=) holding the password; read from "
            "$CREDENTIALS_DIRECTORY when neither password_file nor password_env is set."),
    Setting("imap", "folder", str, "INBOX", "The folder watched for notifications."),
    Setting("imap", "drafts_folder", str, "Drafts",
            "Drafts folder name, used when the server does not mark one with \\Drafts "
            "(RFC 6154); created if missing."),
    Setting("imap", "idle_seconds", int, 540,
            "Renew IDLE after this many seconds (at most 600: servers drop idle clients at 30 min "
            "and NAT boxes much sooner)."),
    Setting("imap", "poll_seconds", int, 60, "Polling interval when the server has no IDLE."),
    Setting("imap", "timeout_seconds", int, 60, "Socket timeout for IMAP commands."),
    Setting("oauth", "provider", str, "",
            'Who issued the OAuth2 token: "gmail" or "microsoft" (Microsoft 365 / Outlook.com); '
            "empty = the one `madoguchi auth` recorded in credentials_file."),
    Setting("oauth", "credentials_file", str, "",
            "JSON file (mode 0600) holding the refresh token from `madoguchi auth` and the current "
            "access token, which is refreshed and written back here (relative to the config "
            "file's folder; required when [imap] auth is not \"password\")."),
    Setting("oauth", "client_id", str, "",
            "The OAuth2 client ID: a Google Cloud \"Desktop app\" client, or a Microsoft Entra ID "
            "app registration (public client) with the IMAP.AccessAsUser.All permission."),
    Setting("oauth", "client_secret_file", str, "",
            "File holding the client secret (first line), or the client_secret_….json downloaded "
            "from Google Cloud. Google's desktop clients need it; Microsoft's public clients do not."),
    Setting("oauth", "client_secret_env", str, "", "Environment variable holding the client secret."),
    Setting("oauth", "token_endpoint", str, "",
            "Where the refresh token is exchanged for an access token; empty = the provider's "
            "(https://oauth2.googleapis.com/token, https://login.microsoftonline.com/<tenant>/"
            "oauth2/v2.0/token). http:// is allowed only for localhost."),
    Setting("oauth", "tenant", str, "common",
            "Microsoft only: the Entra ID tenant (ID or domain) to sign in with; \"common\" for "
            "multi-tenant apps and personal accounts."),
    Setting("state", "path", str, "madoguchi.sqlite3",
            "SQLite file recording handled mails (relative to the config file's folder, or "
            "$STATE_DIRECTORY under systemd)."),
    Setting("seller", "shop_name", str, "", "Shop name used in drafts (e.g. 〇〇ストア)."),
    Setting("seller", "person_name", str, "", "The seller's own name used in drafts."),
    Setting("seller", "shop_name_latin", str, "", "The shop name in Latin letters, for English drafts."),
    Setting("seller", "person_name_latin", str, "", "The seller's name in Latin letters, for English drafts."),
    Setting("seller", "from_address", str, "",
            "The seller's registered or approved sender address: the From of Amazon replies "
            "and the To of notes to the seller."),
    Setting("policy", "return_window_days", int, 30,
            "Days after the order within which a return is ordinary (Amazon: 30)."),
    Setting("policy", "cheap_item_yen", int, 2000,
            "Below this cost a wrongly shipped item is left with the buyer (the seeds' rule)."),
    Setting("policy", "review_below", float, 0.6,
            "Predictions less confident than this are marked for the seller's review."),
    Setting("model", "path", str, "",
            "A trained model file (.npz, from `madoguchi train`); empty means the model shipped with madoguchi."),
    Setting("templates", "path", str, "",
            "A folder of templates overriding the shipped ones (same layout as templates/)."),
    Setting("catalogue", "path", str, "",
            "The seller's listings CSV used by the stop-related-listings alert; empty = none."),
    Setting("service", "backoff_max_seconds", int, 300, "Cap of the reconnect backoff."),
    Setting("service", "since", str, "",
            "Backfill mail received on or after this date (YYYY-MM-DD) on the first start; "
            "empty = only mail that arrives after the first start."),
    Setting("service", "metrics_port", int, 0,
            "Serve Prometheus metrics on 127.0.0.1 at this port; 0 = off."),
)

_BY_KEY = {(s.section, s.key): s for s in SETTINGS}
_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


class Settings:
    """Validated settings, read as `settings.imap.host`."""

    def __init__(self, values: dict[tuple[str, str], Any], source: Path | None) -> None:
        self._values = values
        self.source = source
        for section in {s.section for s in SETTINGS}:
            fields = {k: v for (sec, k), v in values.items() if sec == section}
            object.__setattr__(self, section, _Section(fields))

    def __getattr__(self, name: str) -> Any:  # for mypy: sections are set in __init__
        raise AttributeError(name)

    def path(self, value: str) -> Path:
        """A path setting, relative to the config file's folder."""
        p = Path(value).expanduser()
        if p.is_absolute() or self.source is None:
            return p
        return self.source.parent / p


class _Section:
    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


def defaults() -> Settings:
    return Settings({(s.section, s.key): s.default for s in SETTINGS}, None)


def load(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_mapping(data, path)


def from_mapping(data: dict[str, Any], path: Path | None) -> Settings:
    where = str(path) if path else "<settings>"
    values = {(s.section, s.key): s.default for s in SETTINGS}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table of settings")
        for key, value in table.items():
            setting = _BY_KEY.get((section, key))
            if setting is None:
                raise ConfigError(f"{where}: [{section}] {key}: unknown setting")
            if key == "password" or key.endswith("_password"):
                raise ConfigError(f"{where}: [{section}] {key}: passwords are not kept in config")
            values[(section, key)] = _coerce(setting, value, where)
    settings = Settings(values, path)
    _check(settings, where)
    return settings


def _coerce(setting: Setting, value: Any, where: str) -> Any:
    expected = setting.type
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(
            f"{where}: [{setting.section}] {setting.key}: expected {expected.__name__}, "
            f"got {value!r}"
        )
    return value


def _check(s: Settings, where: str) -> None:
    if s.imap.security not in ("tls", "starttls", "none"):
        raise ConfigError(f'{where}: [imap] security: expected "tls", "starttls" or "none", '
                          f"got {s.imap.security!r}")
    local = s.imap.host in _LOCAL_HOSTS
    if s.imap.security == "none" and not local:
        raise ConfigError(f'{where}: [imap] security: "none" is allowed only for localhost')
    if not s.imap.verify_certificate and not local:
        raise ConfigError(f"{where}: [imap] verify_certificate: can be false only for localhost")
    if not 30 <= s.imap.idle_seconds <= 600:
        raise ConfigError(f"{where}: [imap] idle_seconds: must be between 30 and 600")
    if not 1 <= s.policy.return_window_days <= 365:
        raise ConfigError(f"{where}: [policy] return_window_days: must be between 1 and 365")
    if not 0.0 <= s.policy.review_below <= 1.0:
        raise ConfigError(f"{where}: [policy] review_below: must be between 0 and 1")
    if s.service.since:
        from datetime import date

        try:
            date.fromisoformat(s.service.since)
        except ValueError:
            raise ConfigError(f"{where}: [service] since: expected YYYY-MM-DD") from None


def require_imap(s: Settings) -> None:
    where = str(s.source) if s.source else "<settings>"
    for key in ("host", "username"):
        if not getattr(s.imap, key):
            raise ConfigError(f"{where}: [imap] {key}: required to connect")


def password(s: Settings) -> str:
    """The IMAP password, read from where the config points; never from the config itself."""
    where = str(s.source) if s.source else "<settings>"
    if s.imap.password_file:
        p = s.path(s.imap.password_file)
        try:
            return p.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError):
            raise ConfigError(
                f"{where}: [imap] password_file: cannot read a password from {p}"
            ) from None
    if s.imap.password_env:
        value = os.environ.get(s.imap.password_env)
        if not value:
            raise ConfigError(
                f"{where}: [imap] password_env: ${s.imap.password_env} is not set"
            )
        return value
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        p = Path(creds) / s.imap.password_credential
        if p.is_file():
            return p.read_text(encoding="utf-8").strip()
    raise ConfigError(
        f"{where}: [imap] password_file: no password given (set password_file, password_env, "
        "or LoadCredential= under systemd)"
    )


def example_toml() -> str:
    """config/example.toml, generated from SETTINGS."""
    lines = ["# madoguchi configuration. Every setting, its default, and what it does.",
             "# Generated by `madoguchi check-config --print-example`; do not edit by hand.", ""]
    section = ""
    for s in SETTINGS:
        if s.section != section:
            section = s.section
            lines += ["", f"[{section}]"]
        lines.append(f"# {s.doc}")
        lines.append(f"{s.key} = {_toml_value(s.default)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)
