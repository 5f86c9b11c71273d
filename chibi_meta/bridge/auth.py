"""Bearer tokens: constant-time comparison, several tokens accepted at once (for rotation)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable


class TokenAuth:
    """Checks tokens against a set of accepted ones. With no tokens, everyone is accepted."""

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._tokens = [t.encode("utf-8") for t in tokens if t]

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def check(self, token: str | None) -> bool:
        if not self._tokens:
            return True
        if not isinstance(token, str):
            return False
        given = token.encode("utf-8", "surrogatepass")
        ok = False
        for t in self._tokens:  # compare against every token so timing does not tell which matched
            ok |= hmac.compare_digest(given, t)
        return ok

    def check_header(self, value: str | None) -> bool | None:
        """``Authorization`` header -> True (good), False (present but wrong), None (absent)."""
        if value is None:
            return None
        scheme, _, cred = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return self.check(cred.strip())
