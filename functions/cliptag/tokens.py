"""Pagination tokens: opaque to clients, signed so that a tampered or forged token is refused.

A token holds one position per index shard (the last index sort key returned; "" once the shard
is exhausted) and an HMAC-SHA256 over those positions *and the query they belong to* (tag and
min_score), so a token cannot be edited or replayed against another query. The key is the
stack's pagination secret (Secrets Manager), shared by every API container.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable

from cliptag import keys

MAC_BYTES = 16  # 128-bit tag: forging one is as hard as guessing a random 128-bit number


class BadToken(ValueError):
    """A pagination token that this API did not issue for this query."""


INVALID = "invalid token: edited, forged, or not issued for this query"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pagination secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, payload: bytes, query: str) -> bytes:
        return hmac.new(self._secret, payload + b"\n" + query.encode("utf-8"), hashlib.sha256).digest()[:MAC_BYTES]

    def encode(self, positions: list[str | None], query: str) -> str:
        payload = json.dumps({"v": 1, "p": positions}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload, query))}"

    def decode(
        self, token: str | None, query: str, shards: int, valid: Callable[[str], bool] = keys.is_index_sk
    ) -> list[str | None]:
        """None: start of every shard; "": shard exhausted; else the last index key returned."""
        if not token:
            return [None] * shards
        try:
            body, _, mac = token.partition(".")
            payload = _unb64(body)
            if not hmac.compare_digest(_unb64(mac), self._mac(payload, query)):
                raise BadToken(INVALID)
            positions = json.loads(payload)["p"]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            if isinstance(exc, BadToken):
                raise
            raise BadToken(f"{INVALID} (malformed)") from exc
        # Signed by us, so well-formed unless the table's shard count changed since.
        if not isinstance(positions, list) or len(positions) != shards:
            raise BadToken("token is from another index layout; start again without it")
        if any(p and not valid(p) for p in positions):
            raise BadToken(f"{INVALID} (malformed)")
        return positions
