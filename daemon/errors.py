"""All of madoguchi's own exceptions.

    MadoguchiError                 base; never raised itself
    ├── ConfigError                a setting is wrong: names the key and the file
    ├── UsageError                 a command-line argument is wrong
    ├── ParseError                 a mail cannot be understood: says why
    ├── ModelError                 the model file is missing, corrupt or from another version
    ├── TemplateError              a draft template is missing or broken
    ├── CatalogueError             the listings CSV is unreadable
    ├── DataError                  labelled training mail is missing or misarranged
    └── MailboxError               the IMAP server refused something
        ├── ConnectionLost         the connection dropped: reconnect, do not log out
        └── LoginRefused           wrong user or password: stop, do not hammer the server

Messages are sentences a seller can act on; each names the thing that is wrong.
"""

from __future__ import annotations


class MadoguchiError(Exception):
    """Base class of every error madoguchi reports to a person."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        if type(self) is MadoguchiError:
            raise TypeError("MadoguchiError is abstract; raise a subclass")
        super().__init__(message)


class ConfigError(MadoguchiError):
    exit_code = 2


class UsageError(MadoguchiError):
    exit_code = 2


class ParseError(MadoguchiError):
    pass


class ModelError(MadoguchiError):
    exit_code = 3


class TemplateError(MadoguchiError):
    pass


class CatalogueError(MadoguchiError):
    pass


class DataError(MadoguchiError):
    pass


class MailboxError(MadoguchiError):
    exit_code = 4


class ConnectionLost(MailboxError):
    pass


class LoginRefused(MailboxError):
    exit_code = 5
