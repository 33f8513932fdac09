"""Hide credentials in URLs before anything is shown: one function for every place a
store address, an error or a log line can reach a user, a log file or the REST API.

A URL's password (``postgresql://alice:s3cret@db/mlops``) and the values of query-string
keys that look like secrets (``?token=…``, ``X-Amz-Signature=…``, ``sig=…``) become ``***``;
the rest stays readable, so users still see which database or bucket is meant.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

MASK = "***"

# scheme://[userinfo@]rest, up to whitespace, a quote or an angle bracket.
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s'\"<>`]+)")
_SECRET_KEY = re.compile(
    r"(pass|pwd|secret|token|key|sig|signature|credential|auth|session|sas|private)",
    re.IGNORECASE,
)
_QUERY_PAIR = re.compile(r"(?P<key>[^&=#?;]+)=(?P<value>[^&#;]*)")


def _redact_url(scheme: str, rest: str) -> str:
    authority, sep, tail = rest.partition("/")
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        if colon:
            authority = f"{user}:{MASK}@{host}"
        elif _SECRET_KEY.search(user) or len(user) >= 32:
            authority = f"{MASK}@{host}"  # a bare token used as the user name
    rebuilt = authority + sep + tail
    if "?" in rebuilt:
        head, _, query = rebuilt.partition("?")
        query = _QUERY_PAIR.sub(
            lambda m: f"{m['key']}={MASK}" if _SECRET_KEY.search(m["key"]) else m[0], query
        )
        rebuilt = f"{head}?{query}"
    return scheme + rebuilt


def redact(text: object) -> str:
    """``text`` (a URL, or a message holding URLs) with every credential replaced by ``***``."""
    return _URL.sub(lambda m: _redact_url(m["scheme"], m["rest"]), str(text))
