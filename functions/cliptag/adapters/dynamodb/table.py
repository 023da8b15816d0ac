"""One DynamoDB table through one boto3 client: typed items, error mapping and batching.

Every call goes through ``call``: botocore has already retried it with backoff (standard mode,
4 attempts), and what is still throttled or timing out becomes TransientError, so only the SQS
message it belongs to is redelivered. Batch calls resend what DynamoDB left unprocessed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from cliptag.adapters.aws import errors_mapped
from cliptag.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
BATCH_WRITE_MAX, BATCH_GET_MAX = 25, 100
_ser, _de = TypeSerializer(), TypeDeserializer()


def typed(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values -> DynamoDB's typed form; None values are left out."""
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed form -> plain values (top-level numbers as int or float)."""
    return {k: _number(_de.deserialize(v)) for k, v in item.items()}


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _errors_mapped() -> AbstractContextManager[None]:
    """Throttling and timeouts left after botocore's retries become TransientError."""
    return errors_mapped("DynamoDB", TRANSIENT_CODES)


def condition_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class Table:
    def __init__(self, name: str, client: DynamoDBClient | None = None) -> None:
        self.name = name
        self.client: DynamoDBClient = client or boto3.client(
            "dynamodb",
            # 16 pooled connections: a category page queries its tags' partitions concurrently.
            config=Config(
                retries={"mode": "standard", "max_attempts": 4},
                connect_timeout=3,
                read_timeout=10,
                max_pool_connections=16,
            ),
        )

    def call(self, operation: str, **kwargs: Any) -> Any:
        with _errors_mapped():
            return getattr(self.client, operation)(**kwargs)

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        resp = self.call("get_item", TableName=self.name, Key=typed(key))
        return plain(resp["Item"]) if "Item" in resp else None

    def put(self, item: dict[str, Any], condition: str | None = None, **expression: Any) -> bool:
        """Put ``item``; with a condition, False when it does not hold (nothing written)."""
        params: dict[str, Any] = {"TableName": self.name, "Item": typed(item)}
        if condition:
            params["ConditionExpression"] = condition
            if "values" in expression:
                params["ExpressionAttributeValues"] = typed(expression["values"])
            if "names" in expression:
                params["ExpressionAttributeNames"] = expression["names"]
        try:
            self.call("put_item", **params)
        except ClientError as exc:
            if condition and condition_failed(exc):
                return False
            raise
        return True

    def delete(self, key: dict[str, Any]) -> None:
        self.call("delete_item", TableName=self.name, Key=typed(key))

    def delete_if(self, key: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        """Delete ``key`` only while ``condition`` holds (False: it did not, or no such item)."""
        try:
            self.call(
                "delete_item",
                TableName=self.name,
                Key=typed(key),
                ConditionExpression=condition,
                ExpressionAttributeValues=typed(values),
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def query(self, key_condition: str, values: dict[str, Any], **options: Any) -> Iterator[dict[str, Any]]:
        """Every item the query matches, page after page (boto3's paginator)."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.name,
            KeyConditionExpression=key_condition,
            ExpressionAttributeValues=typed(values),
            **options,
        )
        with _errors_mapped():
            for page in pages:
                yield from (plain(raw) for raw in page.get("Items", []))

    def query_page(
        self, key_condition: str, values: dict[str, Any], start: dict[str, Any] | None = None, **options: Any
    ) -> list[dict[str, Any]]:
        """One page of a query (``Limit`` in ``options``), after the item ``start`` if given."""
        if start:
            options["ExclusiveStartKey"] = typed(start)
        resp = self.call(
            "query",
            TableName=self.name,
            KeyConditionExpression=key_condition,
            ExpressionAttributeValues=typed(values),
            **options,
        )
        return [plain(raw) for raw in resp.get("Items", [])]

    def scan_page(
        self, start: dict[str, Any] | None = None, limit: int | None = None, **options: Any
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
        """One page of a Scan (eventually consistent, 1 MB or ``limit`` items read) after the key
        ``start``: (items, the position after it or None at the end, items read)."""
        if start:
            options["ExclusiveStartKey"] = typed(start)
        if limit:
            options["Limit"] = limit
        resp = self.call("scan", TableName=self.name, **options)
        last = resp.get("LastEvaluatedKey")
        return [plain(raw) for raw in resp.get("Items", [])], plain(last) if last else None, int(resp["ScannedCount"])

    def batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Consistent reads of ``keys``, one BatchGetItem per 100 (a key asked twice is read once:
        DynamoDB refuses a request that names one twice)."""
        keys = list({tuple(sorted(k.items())): k for k in keys}.values())
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_MAX):
            request = {
                self.name: {"Keys": [typed(k) for k in keys[start : start + BATCH_GET_MAX]], "ConsistentRead": True}
            }
            for resp in self._until_processed("batch_get_item", request, "UnprocessedKeys"):
                found += [plain(raw) for raw in resp.get("Responses", {}).get(self.name, [])]
        return found

    def batch_write(self, puts: list[dict[str, Any]], deletes: Sequence[dict[str, Any]] = ()) -> None:
        """Puts and deletes in BatchWriteItem calls of 25 (1 WRU per item, no transaction)."""
        requests = [{"PutRequest": {"Item": typed(i)}} for i in puts]
        requests += [{"DeleteRequest": {"Key": typed(k)}} for k in deletes]
        for start in range(0, len(requests), BATCH_WRITE_MAX):
            request = {self.name: requests[start : start + BATCH_WRITE_MAX]}
            for _ in self._until_processed("batch_write_item", request, "UnprocessedItems"):
                pass

    def _until_processed(self, operation: str, request: dict[str, Any], leftover: str) -> Iterator[dict[str, Any]]:
        """Run a batch operation, resending what DynamoDB left unprocessed (throttling) with
        backoff; yields each response. Still unprocessed after six tries: TransientError."""
        for attempt in range(6):
            resp: dict[str, Any] = self.call(operation, RequestItems=request)
            yield resp
            request = resp.get(leftover) or {}
            if not request:
                return
            time.sleep(min(1.0, 0.05 * 2**attempt))
        raise TransientError(f"DynamoDB left requests unprocessed ({leftover})")
