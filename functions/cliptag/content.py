"""Content identity: the SHA-256 of an object's bytes.

Two keys with the same bytes share one content id, so the model runs once per content.
"""

import hashlib


def content_id(data: bytes) -> str:
    """Hex SHA-256 of ``data``; the key of the embedding cache."""
    return hashlib.sha256(data).hexdigest()
