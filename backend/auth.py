"""Bearer-token checks for the backend's endpoints.

The token is compared in constant time (hmac.compare_digest), so response timing does
not reveal how much of a guess was right. It is never logged, never echoed in a
response and hidden from repr(), so a debug print of the settings cannot leak it.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("modelmon.backend")
# At most one log line about refused requests per interval (per realm and worker).
REFUSAL_LOG_INTERVAL_S = 10.0


class ConfigError(ValueError):
    """A setting the backend cannot start with; the message never holds a secret."""


def load_token(environ: Mapping[str, str], name: str) -> str | None:
    """The token set in `name` or in the file named by `name`_FILE; None when neither is set."""
    value = environ.get(name)
    path = environ.get(f"{name}_FILE")
    if value is not None and path is not None:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    if path is not None:
        try:
            value = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.__class__.__name__}") from None
        source = f"{name}_FILE ({path})"
    else:
        source = name
    if value is None:
        return None
    # Secret files and `echo` add a trailing newline that is not part of the token.
    token = value.strip()
    if not token:
        raise ConfigError(f"{source} is empty; unset it to serve without a token")
    if any(ch.isspace() for ch in token) or not token.isascii():
        raise ConfigError(f"{source} must be one word of ASCII characters to fit an Authorization header")
    return token


@dataclass(frozen=True)
class Denied:
    """Why a request was refused: the body to send and the WWW-Authenticate challenge."""

    message: str
    challenge: str


class BearerAuth:
    """Checks `Authorization: Bearer <token>` against a configured token; open when there is none."""

    def __init__(self, token: str | None, realm: str):
        self._token = token.encode("ascii") if token is not None else None
        self.realm = realm
        self._log_lock = threading.Lock()
        self._log_after = 0.0  # monotonic time before which refusals are counted, not logged
        self._unlogged = 0

    @property
    def required(self) -> bool:
        return self._token is not None

    def __repr__(self) -> str:
        return f"BearerAuth(realm={self.realm!r}, required={self.required})"

    def check(self, environ: Mapping[str, object]) -> Denied | None:
        """None when the request may pass; otherwise what to answer with 401."""
        if self._token is None:
            return None
        header = environ.get("HTTP_AUTHORIZATION")
        base = f'Bearer realm="{self.realm}"'
        # The path is the client's: shown escaped, so a %0a in it cannot start a forged log line.
        path = printable(str(environ.get("PATH_INFO", "")))
        where = f"{environ.get('REQUEST_METHOD')} {path} from {environ.get('REMOTE_ADDR', '?')}"
        if not isinstance(header, str) or not header.strip():
            self._refused("refused %s: no bearer token", where)
            return Denied("a bearer token is required: send 'Authorization: Bearer <token>'", base)
        scheme, _, presented = header.strip().partition(" ")
        # The scheme is case-insensitive (RFC 7235); the token itself is not.
        if scheme.lower() != "bearer" or not presented.strip():
            self._refused("refused %s: Authorization is not a bearer token", where)
            return Denied("the Authorization header must be 'Bearer <token>'", f'{base}, error="invalid_request"')
        if not hmac.compare_digest(presented.strip().encode("utf-8"), self._token):
            self._refused("refused %s: wrong bearer token", where, level=logging.WARNING)
            return Denied("the bearer token is not valid", f'{base}, error="invalid_token"')
        return None

    def _refused(self, message: str, where: str, level: int = logging.INFO) -> None:
        """One line per refusal, but at most one per REFUSAL_LOG_INTERVAL_S: a client guessing tokens
        cannot flood the log. The next line says how many were not logged."""
        now = time.monotonic()
        with self._log_lock:
            if now < self._log_after:
                self._unlogged += 1
                return
            unlogged, self._unlogged, self._log_after = self._unlogged, 0, now + REFUSAL_LOG_INTERVAL_S
        more = f" ({unlogged} more refusals not logged in the last {REFUSAL_LOG_INTERVAL_S:g}s)" if unlogged else ""
        log.log(level, message + more, where)


def printable(text: str) -> str:
    """`text` with control characters and backslashes escaped (\\n, \\x1b): one log line, as sent."""
    return "".join(c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii") for c in text)
