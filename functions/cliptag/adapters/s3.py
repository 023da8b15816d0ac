"""S3 adapter: read uploaded objects (size-capped) and fetch model files into /tmp."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cliptag.errors import ObjectChanged, ObjectGone, PermanentError, TransientError
from cliptag.records import ObjectBytes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GONE_CODES = {"NoSuchKey", "404", "NotFound"}
CHANGED_CODES = {"PreconditionFailed", "412"}
DENIED_CODES = {"AccessDenied", "403", "InvalidObjectState", "KMS.AccessDeniedException"}


def client() -> S3Client:
    return boto3.client(
        "s3", config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=20)
    )


class S3ObjectReader:
    """The ObjectReader port."""

    def __init__(self, s3: S3Client | None = None) -> None:
        self.client: S3Client = s3 or client()

    def read(self, bucket: str, key: str, max_bytes: int, if_match: str = "") -> ObjectBytes:
        """The object's bytes and what S3 says of them, refusing (before downloading) anything
        over ``max_bytes``; with ``if_match``, only while its ETag is that (412 otherwise)."""
        try:
            params = {"Bucket": bucket, "Key": key} | ({"IfMatch": f'"{if_match}"'} if if_match else {})
            obj = self.client.get_object(**params)  # type: ignore[arg-type]
            length = int(obj.get("ContentLength", 0))
            if length > max_bytes:
                obj["Body"].close()
                raise PermanentError(f"object is {length} bytes, over the {max_bytes}-byte limit")
            modified = obj.get("LastModified")
            return ObjectBytes(
                obj["Body"].read(),
                str(obj.get("ETag", "")).strip('"'),
                modified.timestamp() if modified else 0.0,
                str(obj.get("VersionId") or ""),
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in GONE_CODES:
                raise ObjectGone(f"s3://{bucket}/{key} no longer exists") from exc
            if code in CHANGED_CODES:
                raise ObjectChanged(f"s3://{bucket}/{key} no longer has ETag {if_match}") from exc
            if code in DENIED_CODES:
                raise PermanentError(f"cannot read s3://{bucket}/{key}: {code}") from exc
            raise TransientError(f"S3 GetObject {code}") from exc
        except BotoCoreError as exc:  # timeouts, connection resets
            raise TransientError(f"S3 GetObject failed: {exc}") from exc


class ModelFiles:
    """A model directory under ``s3://bucket/prefix``, fetched file by file into ``dest``.

    Only the files a function opens are fetched (the bundle asks for each by its manifest name),
    so the tagger copies its image encoder and the API only the small files: a whole export
    directory (~0.85 GB with both fp32 encoders) would not fit Lambda's default 512 MB of /tmp.
    GetObject only: the stack's policy grants nothing else on the model bucket.
    """

    def __init__(self, uri: str, dest: Path, s3: S3Client | None = None) -> None:
        if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise ValueError(f"MODEL_S3_URI must look like s3://bucket/prefix, got {uri!r}")
        self.bucket, _, prefix = uri[5:].partition("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.dest = dest
        self.client: S3Client = s3 or boto3.client("s3")

    def fetch(self, name: str) -> Path:
        """``dest/name``, downloaded unless an earlier fetch (or a restored snapshot) has it."""
        path = self.dest / name
        if not path.is_file():
            self.dest.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{name}.part")
            self.client.download_file(self.bucket, self.prefix + name, str(partial))
            partial.replace(path)  # never a half-written file under the real name
        return path


SIDECAR_MAX_BYTES = 1024 * 1024  # a larger object at a sidecar's key is not ours: rewritten, never read whole


class S3MetadataStore:
    """The MetadataStore port: ETags by HEAD, object tags, sidecars (small objects)."""

    def __init__(self, s3: S3Client | None = None) -> None:
        self.client: S3Client = s3 or client()

    def head(self, bucket: str, key: str) -> tuple[str, str] | None:
        try:
            found = self.client.head_object(Bucket=bucket, Key=key)
            return str(found.get("ETag", "")).strip('"'), str(found.get("VersionId") or "")
        except ClientError as exc:
            if exc.response["Error"]["Code"] in GONE_CODES:
                return None
            raise _error("HeadObject", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise TransientError(f"S3 HeadObject failed: {exc}") from exc

    def object_tags(self, bucket: str, key: str, version_id: str = "") -> dict[str, str]:
        version = {"VersionId": version_id} if version_id and version_id != "null" else {}
        try:
            found = self.client.get_object_tagging(Bucket=bucket, Key=key, **version)["TagSet"]  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in GONE_CODES:
                return {}
            raise _error("GetObjectTagging", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise TransientError(f"S3 GetObjectTagging failed: {exc}") from exc
        return {t["Key"]: t["Value"] for t in found}

    def put_object_tags(self, bucket: str, key: str, tags: dict[str, str], version_id: str = "") -> None:
        tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
        version = {"VersionId": version_id} if version_id and version_id != "null" else {}
        try:
            self.client.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tag_set}, **version)  # type: ignore[typeddict-item,arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in GONE_CODES:  # gone: its delete event follows
                raise _error("PutObjectTagging", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise TransientError(f"S3 PutObjectTagging failed: {exc}") from exc

    def read(self, bucket: str, key: str) -> bytes | None:
        try:
            obj = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in GONE_CODES:
                return None
            raise _error("GetObject", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise TransientError(f"S3 GetObject failed: {exc}") from exc
        with obj["Body"] as body:
            return b"" if int(obj.get("ContentLength", 0)) > SIDECAR_MAX_BYTES else body.read()

    def write(self, bucket: str, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/rdf+xml")
        except ClientError as exc:
            raise _error("PutObject", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise TransientError(f"S3 PutObject failed: {exc}") from exc

    def delete(self, bucket: str, key: str) -> None:
        try:
            self.client.delete_object(Bucket=bucket, Key=key)  # idempotent: absent is fine
        except ClientError as exc:
            raise _error("DeleteObject", bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise TransientError(f"S3 DeleteObject failed: {exc}") from exc


def _error(call: str, bucket: str, key: str, exc: ClientError) -> Exception:
    """Refused (no permission, an invalid tag): PermanentError; anything else is retried."""
    code = exc.response["Error"]["Code"]
    if code in DENIED_CODES or code in ("InvalidTag", "InvalidTagError", "BadRequest", "MalformedXML"):
        return PermanentError(f"S3 {call} s3://{bucket}/{key} refused: {code}")
    return TransientError(f"S3 {call} {code}")
