"""DynamoDB key layout (single table), in one place.

| item                   | PK                 | SK              | GSI1PK          | GSI1SK                 |
|------------------------|--------------------|-----------------|-----------------|------------------------|
| object's tags          | OBJ#<bucket>/<key> | META            |                 |                        |
| object has tag T       | OBJ#<bucket>/<key> | TAG#<T>         | TAG#<T>[#shard] | <score 7 digits>#<ref> |
| embedding of content   | IMG#<sha256>       | MODEL#<model>   |                 |                        |

Scores (cosine, -1..1) are stored as fixed-width integers so string order is score order;
the index is read newest-highest first with ScanIndexForward=False.
"""

from __future__ import annotations

import zlib

META = "META"
SCORE_SCALE = 500_000  # (score + 1) * SCALE: 6 decimals, 0..1,000,000
SCORE_WIDTH = 7


def object_pk(ref: str) -> str:
    return f"OBJ#{ref}"


def tag_sk(tag: str) -> str:
    return f"TAG#{tag}"


def content_pk(content_id: str) -> str:
    return f"IMG#{content_id}"


def content_sk(model_key: str) -> str:
    return f"MODEL#{model_key}"


def shard_of(ref: str, shards: int) -> int:
    """Stable shard of an object for hot tags (default one shard: no suffix)."""
    return zlib.crc32(ref.encode("utf-8")) % shards if shards > 1 else 0


def tag_index_pk(tag: str, shard: int = 0, shards: int = 1) -> str:
    return f"TAG#{tag}" if shards <= 1 else f"TAG#{tag}#{shard}"


def encode_score(score: float) -> str:
    clamped = min(1.0, max(-1.0, score))
    return str(round((clamped + 1.0) * SCORE_SCALE)).zfill(SCORE_WIDTH)


def decode_score(encoded: str) -> float:
    return round(int(encoded) / SCORE_SCALE - 1.0, 6)


def tag_index_sk(score: float, ref: str) -> str:
    return f"{encode_score(score)}#{ref}"


def ref_from_index_sk(sk: str) -> str:
    return sk.split("#", 1)[1]
