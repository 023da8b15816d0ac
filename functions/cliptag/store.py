"""DynamoDB adapter: the only module that talks to the tags table.

An object's writes converge on what it should hold (see ``_replace``): a retry after a crash
repairs whatever was half-written, an overwrite replaces tags instead of merging them, and a
duplicate delivery writes nothing. A delete leaves a short-lived tombstone carrying the S3
sequencer, so an older event that arrives late cannot resurrect the object.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import numpy as np
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from numpy.typing import NDArray

from cliptag import codec, keys
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


def _cached(item: dict[str, Any]) -> CachedContent:
    embedding = None
    if item.get("embedding") is not None:
        raw = getattr(item["embedding"], "value", item["embedding"])  # boto3 Binary or bytes
        embedding = codec.decode(bytes(raw), float(item["scale"]))
    return CachedContent(
        status=item.get("status", "embedded"),
        embedding=embedding,
        width=int(item.get("width", 0)),
        height=int(item.get("height", 0)),
        format=item.get("format", ""),
        error=item.get("error", ""),
    )


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
    def get_contents(self, content_ids: list[str], model_key: str) -> dict[str, CachedContent]:
        """What is cached for these contents under this model: one BatchGetItem per 100 ids."""
        found: dict[str, CachedContent] = {}
        unique = sorted(set(content_ids))
        for start in range(0, len(unique), 100):
            keys_ = [
                _item({"PK": keys.content_pk(c), "SK": keys.content_sk(model_key)}) for c in unique[start : start + 100]
            ]
            request = {self.table: {"Keys": keys_, "ConsistentRead": True}}
            for resp in self._until_processed(self.client.batch_get_item, request, "UnprocessedKeys"):
                for raw in resp.get("Responses", {}).get(self.table, []):
                    item = _plain(raw)
                    if item.get("status") != "claimed":  # a claim is work in progress, not a result
                        found[item["PK"].removeprefix("IMG#")] = _cached(item)
        return found

    def put_contents(self, contents: dict[str, CachedContent], model_key: str) -> None:
        """Cache embeddings (or failures) per content id in one BatchWriteItem per 25.

        Unconditional and still idempotent: the same bytes under the same model always give the
        same item, so a second writer rewrites identical values.
        """
        items = []
        for content_id, cached in contents.items():
            values: dict[str, Any] = {
                "PK": keys.content_pk(content_id),
                "SK": keys.content_sk(model_key),
                "status": cached.status,
                "width": cached.width,
                "height": cached.height,
                "format": cached.format or None,
                "error": cached.error or None,
            }
            if cached.embedding is not None:
                data, scale = codec.encode(cached.embedding)
                values["embedding"], values["scale"] = Binary(data), _decimal(scale)
            items.append(values)
        self._batch_write(items, [])

    def claim_content(self, content_id: str, model_key: str, owner: str, lease_s: int) -> bool:
        """Take the right to embed this content, so concurrent invocations never both infer.

        Succeeds when nobody embedded or claimed it, when a claim's lease ran out (its holder
        died), or when ``owner`` (the SQS message id, stable across redeliveries) holds it.
        """
        now = int(time.time())
        try:
            self._call(
                self.client.put_item,
                TableName=self.table,
                Item=_item(
                    {
                        "PK": keys.content_pk(content_id),
                        "SK": keys.content_sk(model_key),
                        "status": "claimed",
                        "owner": owner,
                        "lease_until": now + lease_s,
                    }
                ),
                ConditionExpression="attribute_not_exists(PK) OR (#s = :claimed AND (lease_until < :now OR #o = :me))",
                ExpressionAttributeNames={"#s": "status", "#o": "owner"},
                ExpressionAttributeValues=_item({":claimed": "claimed", ":now": now, ":me": owner}),
            )
            return True
        except ClientError as exc:
            if _condition_failed(exc):
                return False
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
        """Make the object's items exactly ``meta`` + ``tag_items``, whatever state they are in.

        Query, then converge: one consistent Query of the object's partition returns its META and
        the TAG items that really exist; missing or changed TAG items are put and unwanted ones
        deleted (BatchWriteItem, 1 WRU each: no transaction, which would bill every item twice);
        META goes last, conditional on the revision read. A crash anywhere leaves a state the
        retry reads and repairs; a concurrent writer makes the loser re-read and converge; an
        event older than the stored sequencer is dropped; a duplicate event writes nothing.
        """
        seq = normalise_sequencer(sequencer) if sequencer else None
        wanted = {item["SK"]: item for item in tag_items}
        written: set[str] = set()
        for _attempt in range(5):
            current, existing = self._object_state(ref)
            if current and seq and current.get("sequencer") and current["sequencer"] > seq:
                self._drop_unlisted(ref, written, current)
                raise StaleEvent(f"{ref}: event {seq} is older than stored {current['sequencer']}")
            puts = [item for sk, item in wanted.items() if existing.get(sk) != item["GSI1SK"]]
            deletes = [sk for sk in existing if sk not in wanted]
            if current and not puts and not deletes and _same_meta(current, meta):
                return  # a duplicate delivery: nothing to change
            self._batch_write(puts, [{"PK": keys.object_pk(ref), "SK": sk} for sk in deletes])
            written |= {item["SK"] for item in puts}
            revision = int(current.get("revision", 0)) if current else 0
            item = {**meta, "revision": revision + 1, "sequencer": seq or (current or {}).get("sequencer")}
            params: dict[str, Any] = {"TableName": self.table, "Item": _item(item)}
            if current:
                params["ConditionExpression"] = "revision = :rev"
                params["ExpressionAttributeValues"] = _item({":rev": revision})
            else:
                params["ConditionExpression"] = "attribute_not_exists(PK)"
            try:
                self._call(self.client.put_item, **params)
                return
            except ClientError as exc:
                if not _condition_failed(exc):
                    raise
                # Another writer got there between our Query and our put: read again, converge.
        raise TransientError(f"{ref}: too many concurrent writers")

    def _object_state(self, ref: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """(META or None, {TAG sort key: its index sort key}) as stored right now."""
        meta: dict[str, Any] | None = None
        tags: dict[str, str] = {}
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": _item({":pk": keys.object_pk(ref)}),
            "ConsistentRead": True,
        }
        while True:
            resp = self._call(self.client.query, **params)
            for raw in resp.get("Items", []):
                item = _plain(raw)
                if item["SK"] == keys.META:
                    meta = item
                elif item["SK"].startswith("TAG#"):
                    tags[item["SK"]] = item.get("GSI1SK", "")
            if "LastEvaluatedKey" not in resp:
                return meta, tags
            params["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _drop_unlisted(self, ref: str, written: set[str], current: dict[str, Any]) -> None:
        """After losing to a newer event, remove TAG items we wrote that the winner does not list."""
        listed = {keys.tag_sk(t["name"]) for t in current.get("tags", [])}
        orphans = [{"PK": keys.object_pk(ref), "SK": sk} for sk in written - listed]
        self._batch_write([], orphans)

    def _batch_write(self, puts: list[dict[str, Any]], deletes: list[dict[str, Any]]) -> None:
        """BatchWriteItem in chunks of 25, retrying unprocessed items with backoff."""
        requests = [{"PutRequest": {"Item": _item(i)}} for i in puts]
        requests += [{"DeleteRequest": {"Key": _item(k)}} for k in deletes]
        for start in range(0, len(requests), 25):
            request = {self.table: requests[start : start + 25]}
            for _ in self._until_processed(self.client.batch_write_item, request, "UnprocessedItems"):
                pass

    def _until_processed(self, operation: Any, request: dict[str, Any], leftover: str) -> Iterator[dict[str, Any]]:
        """Run a batch operation, resending what DynamoDB left unprocessed (throttling) with
        backoff; yields each response. Still unprocessed after six tries: TransientError."""
        for attempt in range(6):
            resp: dict[str, Any] = self._call(operation, RequestItems=request)
            yield resp
            request = resp.get(leftover) or {}
            if not request:
                return
            time.sleep(min(1.0, 0.05 * 2**attempt))
        raise TransientError(f"DynamoDB left requests unprocessed ({leftover})")

    # -- queries ---------------------------------------------------------------------------
    def query_tag(
        self, tag: str, min_score: float, limit: int, positions: list[str | None] | None = None
    ) -> tuple[list[tuple[str, float]], list[str | None] | None]:
        """Objects with ``tag`` and score >= min_score, best first; returns (page, next positions).

        With several shards each is read in order and merged; ``positions`` holds one place per
        shard (None: not started, "": exhausted), as ``cliptag.tokens`` carries it between pages.
        """
        positions = positions or [None] * self.shards
        floor = keys.encode_score(min_score)
        heads: list[list[str]] = []  # per shard: index sort keys, best first
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
            heads.append([_de.deserialize(i["GSI1SK"]) for i in items])
        merged = sorted(((sk, shard) for shard, rows in enumerate(heads) for sk in rows), reverse=True)
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
        return results, next_positions if more else None

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        """One DynamoDB call (botocore has already retried it with backoff); what is still
        throttled or timing out becomes TransientError, so only its message is redelivered."""
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in TRANSIENT_CODES:
                raise TransientError(f"DynamoDB {exc.response['Error']['Code']}") from exc
            raise
        except BotoCoreError as exc:  # timeouts, connection resets after botocore's retries
            raise TransientError(f"DynamoDB {type(exc).__name__}: {exc}") from exc


META_FIELDS = ("status", "content_id", "tags", "model", "vocabulary", "error", "width", "height", "format", "size")


def _same_meta(current: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when writing ``new`` would change nothing a reader sees."""

    def norm(meta: dict[str, Any]) -> tuple[Any, ...]:
        tags = [(t["name"], round(float(t["score"]), 6)) for t in meta.get("tags") or []]
        return tuple(tags if f == "tags" else meta.get(f) or None for f in META_FIELDS)

    return norm(current) == norm(new)


def _decimal(score: float) -> Decimal:
    return Decimal(str(round(score, 6)))


def _condition_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
