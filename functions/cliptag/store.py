"""DynamoDB adapter: the only module that talks to the tags table.

Writes of one object are a single transaction (its META item, its TAG items, deletes of the tags
it no longer has) guarded by an optimistic revision check, so a retry after a crash converges
to the same items and an overwrite replaces tags instead of merging them. A delete leaves a
short-lived tombstone carrying the S3 sequencer, so an older event that arrives late cannot
resurrect the object.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import numpy as np
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError
from numpy.typing import NDArray

from cliptag import keys
from cliptag.errors import TransientError
from cliptag.events import normalise_sequencer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TOMBSTONE_TTL_SECONDS = 7 * 24 * 3600
TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}
_ser, _de = TypeSerializer(), TypeDeserializer()


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: _de.deserialize(v) for k, v in item.items()}
    return {k: (float(v) if hasattr(v, "is_integer") and not isinstance(v, int | bool) else v) for k, v in out.items()}


@dataclass(frozen=True)
class CachedContent:
    """What is known about one content id under one model."""

    status: str  # "embedded" or "failed"
    embedding: NDArray[np.float32] | None = None
    width: int = 0
    height: int = 0
    format: str = ""
    error: str = ""


@dataclass(frozen=True)
class ObjectRecord:
    """The META item of an object: its tags or why it could not be tagged."""

    bucket: str
    key: str
    status: str  # "tagged" or "failed"
    content_id: str = ""
    tags: list[tuple[str, float]] = field(default_factory=list)
    model: str = ""
    vocabulary: str = ""
    width: int = 0
    height: int = 0
    format: str = ""
    size: int = 0
    error: str = ""

    @property
    def ref(self) -> str:
        return f"{self.bucket}/{self.key}"


class StaleEvent(Exception):
    """A newer event for this key was already applied; this one changes nothing."""


class TagStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None, shards: int = 1) -> None:
        self.table = table_name
        self.shards = max(1, shards)
        self.client: DynamoDBClient = client or boto3.client(
            "dynamodb",
            config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10),
        )

    # -- content cache -------------------------------------------------------------------
    def get_content(self, content_id: str, model_key: str) -> CachedContent | None:
        resp = self._call(
            self.client.get_item,
            TableName=self.table,
            Key=_item({"PK": keys.content_pk(content_id), "SK": keys.content_sk(model_key)}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        item = _plain(resp["Item"])
        embedding = None
        if item.get("embedding") is not None:
            raw = item["embedding"]
            embedding = np.frombuffer(getattr(raw, "value", raw), dtype=np.float16).astype(np.float32)
        return CachedContent(
            status=item.get("status", "embedded"),
            embedding=embedding,
            width=int(item.get("width", 0)),
            height=int(item.get("height", 0)),
            format=item.get("format", ""),
            error=item.get("error", ""),
        )

    def put_content(self, content_id: str, model_key: str, cached: CachedContent) -> None:
        """Idempotent: the first writer wins; the same bytes always give the same item."""
        values: dict[str, Any] = {
            "PK": keys.content_pk(content_id),
            "SK": keys.content_sk(model_key),
            "status": cached.status,
            "width": cached.width,
            "height": cached.height,
            "format": cached.format,
            "error": cached.error or None,
            "created_at": int(time.time()),
        }
        if cached.embedding is not None:
            values["embedding"] = Binary(cached.embedding.astype(np.float16).tobytes())
        try:
            self._call(
                self.client.put_item,
                TableName=self.table,
                Item=_item(values),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # -- objects ---------------------------------------------------------------------------
    def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        resp = self._call(
            self.client.get_item,
            TableName=self.table,
            Key=_item({"PK": keys.object_pk(f"{bucket}/{key}"), "SK": keys.META}),
        )
        item = _plain(resp["Item"]) if "Item" in resp else None
        if item is None or item.get("status") == "deleted":
            return None
        return ObjectRecord(
            bucket=bucket,
            key=key,
            status=item["status"],
            content_id=item.get("content_id", ""),
            tags=[(t["name"], float(t["score"])) for t in item.get("tags", [])],
            model=item.get("model", ""),
            vocabulary=item.get("vocabulary", ""),
            width=int(item.get("width", 0)),
            height=int(item.get("height", 0)),
            format=item.get("format", ""),
            size=int(item.get("size", 0)),
            error=item.get("error", ""),
        )

    def put_object(self, record: ObjectRecord, sequencer: str | None) -> None:
        """Replace the object's tags with ``record``'s (a failed record has none)."""
        meta: dict[str, Any] = {
            "PK": keys.object_pk(record.ref),
            "SK": keys.META,
            "bucket": record.bucket,
            "key": record.key,
            "status": record.status,
            "content_id": record.content_id or None,
            "tags": [{"name": n, "score": _decimal(s)} for n, s in record.tags],
            "model": record.model or None,
            "vocabulary": record.vocabulary or None,
            "width": record.width,
            "height": record.height,
            "format": record.format or None,
            "size": record.size,
            "error": record.error or None,
            "updated_at": int(time.time()),
        }
        tag_items = [
            {
                "PK": keys.object_pk(record.ref),
                "SK": keys.tag_sk(name),
                "GSI1PK": keys.tag_index_pk(name, keys.shard_of(record.ref, self.shards), self.shards),
                "GSI1SK": keys.tag_index_sk(score, record.ref),
                "score": _decimal(score),
            }
            for name, score in record.tags
        ]
        self._replace(record.ref, meta, tag_items, sequencer)

    def delete_object(self, bucket: str, key: str, sequencer: str | None) -> None:
        ref = f"{bucket}/{key}"
        tombstone = {
            "PK": keys.object_pk(ref),
            "SK": keys.META,
            "bucket": bucket,
            "key": key,
            "status": "deleted",
            "updated_at": int(time.time()),
            "expires_at": int(time.time()) + TOMBSTONE_TTL_SECONDS,
        }
        self._replace(ref, tombstone, [], sequencer)

    def _replace(self, ref: str, meta: dict[str, Any], tag_items: list[dict[str, Any]], sequencer: str | None) -> None:
        """One transaction: write META and the new TAG items, delete TAG items no longer held.

        The condition on META's revision makes concurrent writers of one key retry instead of
        leaving a mix of both; the condition on the sequencer drops events older than what is
        stored.
        """
        seq = normalise_sequencer(sequencer) if sequencer else None
        for _attempt in range(5):
            current = self._call(
                self.client.get_item,
                TableName=self.table,
                Key=_item({"PK": keys.object_pk(ref), "SK": keys.META}),
                ConsistentRead=True,
            ).get("Item")
            old = _plain(current) if current else {}
            if seq and old.get("sequencer") and old["sequencer"] > seq:
                raise StaleEvent(f"{ref}: event {seq} is older than stored {old['sequencer']}")
            revision = int(old.get("revision", 0))
            new_tags = {item["SK"] for item in tag_items}
            stale = [f"TAG#{t['name']}" for t in old.get("tags", []) if f"TAG#{t['name']}" not in new_tags]
            item = {**meta, "revision": revision + 1, "sequencer": seq or old.get("sequencer")}
            condition = "attribute_not_exists(PK)" if not current else "revision = :rev"
            put_meta: dict[str, Any] = {
                "TableName": self.table,
                "Item": _item(item),
                "ConditionExpression": condition,
            }
            if current:
                put_meta["ExpressionAttributeValues"] = _item({":rev": revision})
            ops: list[dict[str, Any]] = [{"Put": put_meta}]
            ops += [{"Put": {"TableName": self.table, "Item": _item(t)}} for t in tag_items]
            ops += [
                {"Delete": {"TableName": self.table, "Key": _item({"PK": keys.object_pk(ref), "SK": sk})}}
                for sk in stale
            ]
            try:
                self._call(self.client.transact_write_items, TransactItems=ops)
                return
            except ClientError as exc:
                if not _condition_failed(exc):
                    raise
                # Someone else wrote this key between our read and write: read again.
        raise TransientError(f"{ref}: too many concurrent writers")

    # -- queries ---------------------------------------------------------------------------
    def query_tag(
        self, tag: str, min_score: float, limit: int, token: str | None
    ) -> tuple[list[tuple[str, float]], str | None]:
        """Objects with ``tag`` and score >= min_score, best first; returns (page, next token).

        With several shards each is read in order and merged; the token keeps one position
        per shard.
        """
        positions = decode_token(token, self.shards)
        floor = keys.encode_score(min_score)
        heads: list[list[tuple[str, str]]] = []  # per shard: [(GSI1SK, ref)] best first
        for shard in range(self.shards):
            if positions[shard] == "":  # exhausted
                heads.append([])
                continue
            params: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": "GSI1",
                "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK >= :floor",
                "ExpressionAttributeValues": _item(
                    {":pk": keys.tag_index_pk(tag, shard, self.shards), ":floor": floor}
                ),
                "ScanIndexForward": False,
                "Limit": limit + 1,
            }
            position = positions[shard]
            if position:
                params["ExclusiveStartKey"] = _item(
                    {
                        "PK": keys.object_pk(keys.ref_from_index_sk(position)),
                        "SK": keys.tag_sk(tag),
                        "GSI1PK": keys.tag_index_pk(tag, shard, self.shards),
                        "GSI1SK": position,
                    }
                )
            items = self._call(self.client.query, **params).get("Items", [])
            heads.append(
                [(_de.deserialize(i["GSI1SK"]), keys.ref_from_index_sk(_de.deserialize(i["GSI1SK"]))) for i in items]
            )
        merged = sorted(((sk, shard) for shard, rows in enumerate(heads) for sk, _ in rows), reverse=True)
        page = merged[:limit]
        next_positions = list(positions)
        for shard, rows in enumerate(heads):
            taken = [sk for sk, s in page if s == shard]
            if next_positions[shard] == "" or len(taken) == len(rows):
                # Each shard was asked for limit+1 rows: taking all of them means it is exhausted.
                next_positions[shard] = ""
            elif taken:
                next_positions[shard] = taken[-1]
        more = any(p != "" for p in next_positions)
        results = [(keys.ref_from_index_sk(sk), keys.decode_score(sk.split("#", 1)[0])) for sk, _ in page]
        return results, encode_token(next_positions) if more else None

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in TRANSIENT_CODES:
                raise TransientError(f"DynamoDB {exc.response['Error']['Code']}") from exc
            raise


def _decimal(score: float) -> Any:
    from decimal import Decimal

    return Decimal(str(round(score, 6)))


def _condition_failed(exc: ClientError) -> bool:
    code = exc.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or "ConditionalCheckFailed" in str(exc)
    return False


class BadToken(ValueError):
    """A pagination token that this API did not issue."""


def encode_token(positions: list[str | None]) -> str:
    raw = json.dumps({"v": 1, "p": positions}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, shards: int) -> list[str | None]:
    """None: start of every shard; "": shard exhausted; else the last index key returned."""
    if not token:
        return [None] * shards
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        positions = doc["p"]
        if doc.get("v") != 1 or not isinstance(positions, list) or len(positions) != shards:
            raise BadToken("token does not match this table")
        for p in positions:
            if p is not None and not isinstance(p, str):
                raise BadToken("malformed token")
            if p and (
                len(p) <= keys.SCORE_WIDTH + 1 or not p[: keys.SCORE_WIDTH].isdigit() or p[keys.SCORE_WIDTH] != "#"
            ):
                raise BadToken("malformed token")
        return positions
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        if isinstance(exc, BadToken):
            raise
        raise BadToken("malformed token") from exc
