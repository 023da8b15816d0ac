"""S3 adapter: read uploaded objects (size-capped) and fetch a model directory into /tmp."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cliptag.errors import ObjectGone, PermanentError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GONE_CODES = {"NoSuchKey", "404", "NotFound"}
DENIED_CODES = {"AccessDenied", "403", "InvalidObjectState", "KMS.AccessDeniedException"}


class ObjectSource:
    def __init__(self, client: S3Client | None = None) -> None:
        self.client: S3Client = client or boto3.client(
            "s3",
            config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=20),
        )

    def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """The object's bytes, refusing (before downloading) anything over ``max_bytes``."""
        try:
            obj = self.client.get_object(Bucket=bucket, Key=key)
            length = int(obj.get("ContentLength", 0))
            if length > max_bytes:
                obj["Body"].close()
                raise PermanentError(f"object is {length} bytes, over the {max_bytes}-byte limit")
            return obj["Body"].read()
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in GONE_CODES:
                raise ObjectGone(f"s3://{bucket}/{key} no longer exists") from exc
            if code in DENIED_CODES:
                raise PermanentError(f"cannot read s3://{bucket}/{key}: {code}") from exc
            raise TransientError(f"S3 GetObject {code}") from exc
        except BotoCoreError as exc:  # timeouts, connection resets
            raise TransientError(f"S3 GetObject failed: {exc}") from exc


def download_prefix(uri: str, dest: Path, client: S3Client | None = None) -> Path:
    """Copy ``s3://bucket/prefix/*`` into ``dest`` (model directories too big for a layer)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"MODEL_S3_URI must look like s3://bucket/prefix, got {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    s3 = client or boto3.client("s3")
    dest.mkdir(parents=True, exist_ok=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            name = entry["Key"][len(prefix) :]
            if name and "/" not in name and not (dest / name).is_file():
                s3.download_file(bucket, entry["Key"], str(dest / name))
    return dest
