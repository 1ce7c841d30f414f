"""Bearer-token checks for the backend's endpoints.

The token is compared in constant time (hmac.compare_digest), so response timing does
not reveal how much of a guess was right. It is never logged, never echoed in a
response and hidden from repr(), so a debug print of the settings cannot leak it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("modelmon.backend")


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
        where = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} from {environ.get('REMOTE_ADDR', '?')}"
        if not isinstance(header, str) or not header.strip():
            log.info("refused %s: no bearer token", where)
            return Denied("a bearer token is required: send 'Authorization: Bearer <token>'", base)
        scheme, _, presented = header.strip().partition(" ")
        # The scheme is case-insensitive (RFC 7235); the token itself is not.
        if scheme.lower() != "bearer" or not presented.strip():
            log.info("refused %s: Authorization is not a bearer token", where)
            return Denied("the Authorization header must be 'Bearer <token>'", f'{base}, error="invalid_request"')
        if not hmac.compare_digest(presented.strip().encode("utf-8"), self._token):
            log.warning("refused %s: wrong bearer token", where)
            return Denied("the bearer token is not valid", f'{base}, error="invalid_token"')
        return None
