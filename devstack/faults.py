"""Fault injection for boto3 clients, at the HTTP layer (botocore's ``before-send`` event).

A fault replaces the real exchange with what AWS sends when it is overloaded or the network
fails, so everything above it runs for real: botocore's retries and backoff, our error mapping,
the batch's partial failure report, SQS redelivery and the dead-letter queue.

Kinds:
- ``throttle``: the service's throttling error (S3 503 SlowDown, DynamoDB ThrottlingException);
- ``timeout``: the request never reaches the service (read timeout before sending);
- ``lost``: the request is executed, then the response is lost (read timeout after sending),
  the case that makes a retried conditional write see its own earlier success.

``poison`` rules fail every attempt of matching requests: they model an outage of one object
or item that outlasts every retry, so its message must end in the dead-letter queue.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

# What the tagger calls that the issue asks to fault: S3 GET and DynamoDB writes.
FAULTED_OPERATIONS = {
    "s3": {"GetObject"},
    "dynamodb": {"PutItem", "BatchWriteItem", "DeleteItem", "UpdateItem"},
}
KINDS = ("throttle", "timeout", "lost")


class _Body:
    """The ``raw`` of an AWSResponse: botocore only calls ``stream()`` on error bodies."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def _headers(content_type: str) -> HTTPHeaders:
    headers = HTTPHeaders()
    headers["Content-Type"] = content_type
    return headers


def throttle_response(service: str, url: str) -> AWSResponse:
    if service == "s3":
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate. (injected)</Message></Error>"
        return AWSResponse(url, 503, _headers("application/xml"), _Body(body))
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded (injected)"}'
    return AWSResponse(url, 400, _headers("application/x-amz-json-1.0"), _Body(body))


@dataclass(frozen=True)
class Injected:
    at: float
    service: str
    operation: str
    kind: str
    target: str  # the URL path (S3 key) or the DynamoDB operation's first key, for explanations


@dataclass
class FaultInjector:
    """Attach to clients with ``attach``; ``rate`` applies per HTTP attempt."""

    rate: float = 0.1
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    operations: dict[str, set[str]] = field(default_factory=lambda: {k: set(v) for k, v in FAULTED_OPERATIONS.items()})
    poison: list[Callable[[str, str, bytes], bool]] = field(default_factory=list)  # (service, url, body)
    queued: dict[str, list[str]] = field(default_factory=dict)  # service -> kinds injected first, in order
    enabled: bool = True
    log: list[Injected] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._http = URLLib3Session()

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.endpoint_prefix
        for operation in self.operations.get(service, ()):
            client.meta.events.register(f"before-send.{service}.{operation}", self._before_send)

    def detach(self, client: Any) -> None:
        service = client.meta.service_model.endpoint_prefix
        for operation in self.operations.get(service, ()):
            client.meta.events.unregister(f"before-send.{service}.{operation}", self._before_send)

    def counts(self) -> Counter[tuple[str, str, str]]:
        with self._lock:
            return Counter((f.service, f.operation, f.kind) for f in self.log)

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        if not self.enabled:
            return None
        service, operation = event_name.split(".")[1:3]
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        poisoned = any(rule(service, request.url, body) for rule in self.poison)
        with self._lock:
            queued = self.queued.get(service)
            if poisoned:
                kind = "throttle"
            elif queued:
                kind = queued.pop(0)
            elif self._random.random() < self.rate:
                kind = self._random.choice(self.kinds)
            else:
                return None
            self.log.append(Injected(time.time(), service, operation, kind, request.url))
        if kind == "throttle":
            return throttle_response(service, request.url)
        if kind == "lost":
            self._http.send(request)  # the service applies it; the caller never hears back
        raise ReadTimeoutError(endpoint_url=request.url, error=f"{kind} (injected)")
