"""DynamoDB key layout (single table): the only module that knows the key formats.

| item                   | PK                 | SK              | GSI1PK          | GSI1SK                 |
|------------------------|--------------------|-----------------|-----------------|------------------------|
| object's tags          | OBJ#<bucket>/<key> | META            |                 |                        |
| object has tag T       | OBJ#<bucket>/<key> | TAG#<T>         | TAG[@<space>]#<T>[#shard] | <score 7 digits>#<ref> |
| near-duplicate of R    | OBJ#<bucket>/<key> | DUP#<R>         |                 |                        |
| embedding of content   | IMG#<sha256>       | MODEL#<model>   |                 |                        |
| decisions on content   | IMG#<sha256>       | DECISIONS       |                 |                        |
| what the tagger runs   | DEPLOYMENT         | TAGGER          |                 |                        |
| taught tags (the head) | TAUGHT             | SET             |                 |                        |
| a tag taught by example| TAUGHT             | TAG#<name>      |                 |                        |
| a job's checkpoint     | JOB#<job>          | CHECKPOINT      |                 |                        |

The index GSI3 (keys only) is keyed on the content_id attribute of META items (and of DUP items,
which the reader skips): the objects that hold some bytes, which a decision on them re-tags.
Failed objects' META items also carry GSI2PK = FAILED#<bucket> and GSI2SK = <time>#<ref>: a
sparse index holding only failures, newest first.

Each model's records have their tag index partitions apart (``tag_space``): two models' scores
never meet in one page, while a switch of model is re-tagging the library (docs/models.md).

A category has no items of its own: its images are its tags' index partitions read together,
in one order (every partition's sort keys compare alike), at read time (docs/search.md).

Scores (cosine, -1..1, kept to 6 decimals) are stored in the index as fixed-width integers, so
string order is score order and decoding gives back exactly the score stored in META; the index
is read highest first with ScanIndexForward=False.
"""

from __future__ import annotations

import hashlib
import zlib

PK, SK = "PK", "SK"
TAG_INDEX = "GSI1"
TAG_INDEX_PK, TAG_INDEX_SK = "GSI1PK", "GSI1SK"
FAILURE_INDEX = "GSI2"
FAILURE_INDEX_PK, FAILURE_INDEX_SK = "GSI2PK", "GSI2SK"
META = "META"
DEPLOYMENT = {PK: "DEPLOYMENT", SK: "TAGGER"}

_OBJECT, _TAG, _CONTENT, _MODEL, _FAILED, _JOB = "OBJ#", "TAG#", "IMG#", "MODEL#", "FAILED#", "JOB#"
_DUPLICATE = "DUP#"
SORT_KEY_MAX = 1024  # DynamoDB's limit on a sort key (bytes)
VECTOR_KEY_MAX = 1024  # S3 Vectors' limit on a vector key (characters)
VECTOR_FOLDERS_MAX = 8  # folders a vector lists for "under this folder" filters (2 KB of filterable metadata)
TIME_WIDTH = 10  # unix seconds, zero-padded: string order is time order until 2286
SCORE_DECIMALS = 6
SCORE_SCALE = 1_000_000  # 10**SCORE_DECIMALS; (score + 1) * SCALE: 0..2,000,000, one step per 6th decimal
SCORE_WIDTH = 7
SPACE_DIGITS = 12  # hex digits of a model's tag space
CONFIRMED_OFFSET = 3_000_000  # above any encoded score (2,000,000 at most), still SCORE_WIDTH digits
CONTENT_INDEX = "GSI3"
# Its key is the records' own content_id attribute: META carries no extra bytes, and DynamoDB
# fills the index from the items already there when it is created.
CONTENT_INDEX_PK = "content_id"
_DECISIONS, _DECISION = "DECISIONS", "tag#"


def object_ref(bucket: str, key: str) -> str:
    """``bucket/key``: an object's name in the table (a bucket name never holds a slash)."""
    return f"{bucket}/{key}"


def split_ref(ref: str) -> tuple[str, str]:
    bucket, _, key = ref.partition("/")
    return bucket, key


def object_pk(ref: str) -> str:
    return f"{_OBJECT}{ref}"


def ref_from_object_pk(pk: str) -> str | None:
    """The object's ref, or None when ``pk`` is not an object's partition."""
    return pk.removeprefix(_OBJECT) if pk.startswith(_OBJECT) else None


def tag_sk(tag: str) -> str:
    return f"{_TAG}{tag}"


def tag_from_sk(sk: str) -> str | None:
    """The tag of an object's TAG item, or None for any other sort key."""
    return sk.removeprefix(_TAG) if sk.startswith(_TAG) else None


def duplicate_sk(ref: str) -> str:
    """Sort keys hold 1,024 bytes: a longer ref is named by its digest (the item keeps the ref)."""
    sk = f"{_DUPLICATE}{ref}"
    return (
        sk
        if len(sk.encode("utf-8")) <= SORT_KEY_MAX
        else f"{_DUPLICATE}sha256:{hashlib.sha256(ref.encode()).hexdigest()}"
    )


DUPLICATE_PREFIX = _DUPLICATE


def vector_key(ref: str) -> str:
    """An object's key in the vector index: its ref, or a digest of a ref longer than the index
    allows (bucket name + a key near S3's 1,024 bytes); the ref itself travels in the metadata."""
    if len(ref) <= VECTOR_KEY_MAX:
        return ref
    return "sha256:" + hashlib.sha256(ref.encode("utf-8")).hexdigest()


def content_pk(content_id: str) -> str:
    return f"{_CONTENT}{content_id}"


def content_id_from_pk(pk: str) -> str:
    return pk.removeprefix(_CONTENT)


def content_sk(model_key: str) -> str:
    return f"{_MODEL}{model_key}"


def shard_of(ref: str, shards: int) -> int:
    """Stable shard of an object for hot tags (default one shard: no suffix)."""
    return zlib.crc32(ref.encode("utf-8")) % shards if shards > 1 else 0


def tag_space(model: str, legacy_model: str) -> str:
    """The tag index partitions of one model's records: "" (the original ``TAG#<T>``) for the
    table's first model, else a digest of the model key."""
    if not model or model == legacy_model:
        return ""
    return hashlib.sha256(model.encode("utf-8")).hexdigest()[:SPACE_DIGITS]


def space_of_index_pk(partition: str) -> str:
    """The model space a tag index partition belongs to ("" for the original ``TAG#`` ones)."""
    return partition.removeprefix("TAG@").partition("#")[0] if partition.startswith("TAG@") else ""


def tag_index_pk(tag: str, shard: int = 0, shards: int = 1, space: str = "") -> str:
    base = f"{_TAG}{tag}" if not space else f"TAG@{space}#{tag}"
    return base if shards <= 1 else f"{base}#{shard}"


def round_score(score: float) -> float:
    """The one form a score is stored and answered in (META, index and API agree exactly)."""
    return float(round(min(1.0, max(-1.0, float(score))), SCORE_DECIMALS))


def encode_score(score: float) -> str:
    return str(round((round_score(score) + 1.0) * SCORE_SCALE)).zfill(SCORE_WIDTH)


def decode_score(encoded: str) -> float:
    return round(int(encoded) / SCORE_SCALE - 1.0, SCORE_DECIMALS)


def tag_index_sk(score: float, ref: str, confirmed: bool = False) -> str:
    """``<score>#<ref>``; a tag a person confirmed sorts above every score the model gives (its
    own score plus CONFIRMED_OFFSET, the same width), so a tag page lists confirmed images first
    and any minimum score keeps them."""
    encoded = encode_score(score)
    return f"{int(encoded) + CONFIRMED_OFFSET}#{ref}" if confirmed else f"{encoded}#{ref}"


def ref_from_index_sk(sk: str) -> str:
    return sk.split("#", 1)[1]


def score_from_index_sk(sk: str) -> float:
    value = int(sk.split("#", 1)[0])
    return decode_score(str(value - CONFIRMED_OFFSET if value >= CONFIRMED_OFFSET else value))


def confirmed_in_index_sk(sk: str) -> bool:
    return int(sk.split("#", 1)[0]) >= CONFIRMED_OFFSET


def decisions_sk() -> str:
    """A content's decisions (one item under its content partition, one attribute per tag)."""
    return _DECISIONS


def decision_attribute(tag: str) -> str:
    return f"{_DECISION}{tag}"


def tag_from_decision_attribute(name: str) -> str | None:
    return name.removeprefix(_DECISION) if name.startswith(_DECISION) else None


def _is_sort_key(text: str, width: int) -> bool:
    """``<width digits>#<bucket>/<key>``: the shape of both indexes' sort keys."""
    head, sep, ref = text.partition("#")
    return len(head) == width and head.isdigit() and bool(sep) and "/" in ref


def is_index_sk(text: str) -> bool:
    """Whether ``text`` has the shape of a tag index sort key (a pagination position)."""
    return _is_sort_key(text, SCORE_WIDTH)


def failure_index_pk(bucket: str) -> str:
    return f"{_FAILED}{bucket}"


def failure_index_sk(updated_at: int, ref: str) -> str:
    return f"{str(updated_at).zfill(TIME_WIDTH)}#{ref}"


def is_failure_index_sk(text: str) -> bool:
    return _is_sort_key(text, TIME_WIDTH)


def job_key(job: str) -> dict[str, str]:
    """Where a resumable job (a backfill, a re-tag) keeps its checkpoint."""
    return {PK: f"{_JOB}{job}", SK: "CHECKPOINT"}
