"""Which stack a command works on: a deployed one (by name, from its CloudFormation outputs) or
the local one (`make local` writes build/local-stack.json)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from cliptag.config import writes

LOCAL_STATE = Path("build/local-stack.json")


@dataclass(frozen=True)
class Target:
    bucket: str
    table: str
    queue_url: str
    region: str
    endpoint_url: str | None = None  # the local AWS; None for AWS itself
    api_url: str = ""  # the API's base URL (the gallery calls it)
    key_prefix: str = ""  # the stack's KeyPrefix/KeySuffix: the keys its tagger may read and tag
    key_suffix: str = ""
    vector_bucket: str = ""  # the search index (S3 Vectors): its bucket and name ("" for none)
    vector_index: str = ""
    sidecar_prefix: str = ""  # the stack's SidecarPrefix: keys under it are sidecars, never photos
    caption_queue_url: str = ""  # Captions=On: the caption function's queue ("" when Off)
    write_back: str = "Off"  # the stack's WriteBack: Off, ObjectTags, Sidecar or ObjectTags+Sidecar

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Target:
        if args.stack:
            return cls.deployed(args.stack, args.region)
        return cls.local(Path(args.local_state))

    @classmethod
    def local(cls, state: Path | str = LOCAL_STATE) -> Target:
        state = Path(state)
        if not state.is_file():
            raise SystemExit(f"no local stack: {state} not found (start one with `make local`, or pass --stack NAME)")
        doc = json.loads(state.read_text("utf-8"))
        return cls(
            doc["bucket"],
            doc["table"],
            doc["queue_url"],
            doc["region"],
            doc["aws_endpoint_url"],
            doc["api_url"],
            doc.get("key_prefix", ""),
            doc.get("key_suffix", ""),
            doc.get("vector_bucket", ""),
            doc.get("vector_index", ""),
            doc.get("sidecar_prefix", ""),
            doc.get("caption_queue_url", ""),
            doc.get("write_back") or "Off",
        )

    @classmethod
    def deployed(cls, stack: str, region: str | None) -> Target:
        cfn = boto3.client("cloudformation", region_name=region)
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
        return cls(
            outputs["ImagesBucketName"],
            outputs["TagsTableName"],
            outputs["TaggingQueueUrl"],
            region or cfn.meta.region_name,
            api_url=outputs["ApiUrl"],
            key_prefix=parameters.get("KeyPrefix", ""),
            key_suffix=parameters.get("KeySuffix", ""),
            sidecar_prefix=parameters.get("SidecarPrefix", ""),
            caption_queue_url=outputs.get("CaptionQueueUrl", ""),
            write_back=parameters.get("WriteBack") or "Off",
            **_index_names(outputs.get("VectorIndexArn", "")),
        )

    @property
    def sidecars(self) -> str:
        """The sidecar prefix when the stack writes sidecars (WriteBack with Sidecar), else ""."""
        return self.sidecar_prefix if writes(self.write_back, "Sidecar") else ""

    def listing_prefix(self, prefix: str) -> str:
        """The prefix to list for ``prefix`` within the stack's KeyPrefix (the tagger reads nothing
        outside it: such objects would only come back as AccessDenied failures)."""
        if prefix.startswith(self.key_prefix):
            return prefix
        if self.key_prefix.startswith(prefix):
            return self.key_prefix
        raise SystemExit(
            f"--prefix {prefix!r} is outside the stack's KeyPrefix {self.key_prefix!r}: its tagger may not read it"
        )

    def suffixes(self, suffix: str) -> tuple[str, ...]:
        """What a key must end with: the stack's KeySuffix and ``suffix``."""
        return tuple(s for s in (self.key_suffix, suffix) if s)

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:  # the local AWS takes any credentials
            kwargs.update(endpoint_url=self.endpoint_url, aws_access_key_id="local", aws_secret_access_key="local")
        return boto3.client(service, **kwargs)  # type: ignore[call-overload]

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")


def _index_names(arn: str) -> dict[str, str]:
    """``arn:aws:s3vectors:REGION:ACCOUNT:bucket/BUCKET/index/INDEX`` -> its bucket and index names."""
    parts = arn.split("/")
    return {"vector_bucket": parts[1], "vector_index": parts[3]} if len(parts) == 4 else {}


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("which stack (default: the local one)")
    where.add_argument("--stack", metavar="NAME", help="a deployed stack, found by name through its outputs")
    where.add_argument("--region", help="the deployed stack's Region (default: your AWS configuration's)")
    where.add_argument(
        "--local-state",
        default=str(LOCAL_STATE),
        metavar="FILE",
        help=f"the local stack's endpoints (default {LOCAL_STATE})",
    )
