"""Lambda's side of the local stack: a function context, the SQS event source mapping (the
poller) and API Gateway's REST proxy integration, the way `sam local start-api` plays it."""

from __future__ import annotations

import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


class FakeContext:
    """The parts of a Lambda context the handlers and Powertools read."""

    def __init__(self, name: str, timeout_s: int = 120, memory_mb: int = 2048) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class EventSourceMapping:
    """Long-polls the queue, invokes the function (the tagger, or ``function``: a handler module's
    name) with batches, deletes what succeeded and leaves failures for redelivery and the
    dead-letter queue (ReportBatchItemFailures)."""

    def __init__(
        self, sqs: Any, queue_url: str, queue_arn: str, batch_size: int, window: float, function: str = "tagger"
    ) -> None:
        self.sqs, self.queue_url, self.queue_arn = sqs, queue_url, queue_arn
        self.batch_size, self.window, self.function = batch_size, window, function
        self.invocations = 0

    def run(self, stop: threading.Event) -> None:
        import importlib

        handler = importlib.import_module(f"handlers.{self.function}")
        sqs = self.sqs
        while not stop.is_set():
            messages: list[dict[str, Any]] = []
            deadline = time.monotonic() + self.window
            while len(messages) < self.batch_size and not stop.is_set():
                resp = sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                messages += resp.get("Messages", [])
                if not messages or time.monotonic() >= deadline:
                    break
            if not messages:
                continue
            event = {"Records": [self.sqs_record(m) for m in messages]}
            try:
                result = handler.handler(event, FakeContext(f"cliptag-{self.function}"))
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except Exception:  # a crashed invocation: SQS redelivers the whole batch, as in AWS
                failed = {m["MessageId"] for m in messages}
            self.invocations += 1
            # Powertools keeps unflushed metrics when they are disabled and prints them at 100.
            handler.metrics.clear_metrics()
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )

    def sqs_record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }


def signer(headers: dict[str, str]) -> dict[str, str]:
    """Who signed the request, as API Gateway's IAM authorizer puts it in the request context
    ("Amazon API Gateway Developer Guide": $context.identity.userArn, caller, accessKey). The local
    gateway checks no signature and has no IAM: it names the signer by the access key of the
    SigV4 Authorization header, in the emulated account; unsigned requests carry no identity."""
    found = re.search(r"Credential=([A-Za-z0-9]+)/", headers.get("Authorization") or headers.get("authorization") or "")
    if not found:
        return {}
    key = found.group(1)
    return {"accessKey": key, "caller": key, "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/{key}"}


def api_gateway_event(method: str, raw_path: str, headers: dict[str, str], body: str | None) -> dict[str, Any]:
    """An API Gateway REST proxy event, as `sam local start-api` would build it."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "v1",
            "httpMethod": method,
            "path": f"/v1{parts.path}",
            "identity": {"sourceIp": "127.0.0.1", **signer(headers)},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def api_gateway_handler() -> type[BaseHTTPRequestHandler]:
    # One container: Lambda gives it one request at a time (Powertools' resolver keeps the
    # current request on the app, so two threads in the handler at once would mix them up).
    container = threading.Lock()

    class ApiGateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _dispatch(self) -> None:
            from handlers import api

            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else None
            event = api_gateway_event(self.command, self.path, dict(self.headers.items()), body)
            try:
                with container:
                    result = api.handler(event, FakeContext("cliptag-api", timeout_s=10, memory_mb=1769))
            except Exception:  # what API Gateway answers when the function crashes
                result = {"statusCode": 502, "body": '{"message": "Internal server error"}'}
            payload = (result.get("body") or "").encode("utf-8")
            headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
            headers.setdefault("content-type", "application/json")
            self.send_response(int(result.get("statusCode", 200)))
            for name, value in headers.items():
                self.send_header(name, value)
            for name, values in (result.get("multiValueHeaders") or {}).items():
                if name.lower() not in headers:
                    for value in values:
                        self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def __getattr__(self, name: str) -> Any:
            # http.server looks up do_<METHOD>: like API Gateway's proxy integration, every
            # method reaches the function (which answers 404/405 JSON for what it lacks).
            if name.startswith("do_"):
                return self._dispatch
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: handlers log as JSON
            pass

    return ApiGateway
