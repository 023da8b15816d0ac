"""``python -m devstack up`` (the local stack until Ctrl-C), ``redeploy`` (a new model directory
for it), ``demo`` (devstack.demo) and ``redrive``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from devstack.control import request_redeploy, serve
from devstack.demo import demo
from devstack.stack import DEFAULT_STATE_FILE, LocalStack


def template_parameters(given: list[str], declared: dict[str, Any]) -> dict[str, str]:
    """``Name=Value`` options -> parameters, each checked as CloudFormation checks a deploy's:
    a parameter the template declares, a value among its AllowedValues, matching its
    AllowedPattern, within MinValue/MaxValue for a Number. SystemExit (2) says what is wrong."""
    import re

    found: dict[str, str] = {}
    for option in given:
        name, sep, value = option.partition("=")
        if not sep or not name:
            raise SystemExit(f"--parameter {option!r}: expected Name=Value")
        spec = declared.get(name)
        if spec is None:
            raise SystemExit(
                f"--parameter {name}: the template has no such parameter (one of: {', '.join(sorted(declared))})"
            )
        allowed = [str(v) for v in spec.get("AllowedValues", [])]
        if allowed and value not in allowed:
            raise SystemExit(f"--parameter {name}={value}: one of {', '.join(allowed)}")
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, value):
            raise SystemExit(f"--parameter {name}={value}: must match {pattern}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise SystemExit(f"--parameter {name}={value}: a number is expected") from None
            low, high = spec.get("MinValue"), spec.get("MaxValue")
            if (low is not None and number < float(low)) or (high is not None and number > float(high)):
                raise SystemExit(f"--parameter {name}={value}: between {low} and {high}")
        found[name] = value
    return found


def up(args: argparse.Namespace) -> int:
    from devstack.template_local import load_template

    parameters = template_parameters(args.parameter, load_template().get("Parameters", {}))
    if args.existing_bucket:
        parameters["ExistingBucketName"] = args.existing_bucket
    stack = LocalStack(
        Path(args.model_dir),
        api_port=args.api_port,
        moto_port=args.aws_port,
        parameters=parameters,
        aws_endpoint=args.aws_endpoint,
    )
    info = stack.start()
    if parameters.get("Captions") == "On":  # the caption model a deploy takes from CaptionModelS3Uri
        captions = Path(args.caption_model_dir)
        if not (captions / "caption.json").is_file():
            stack.stop()
            raise SystemExit(
                f"Captions=On needs a caption model: {captions} has no caption.json "
                f"(python -m model_export captions --model tiny-blip --out {captions})"
            )
        stack.start_captions(captions)
    info.pid = os.getpid()
    state = stack.write_state(Path(args.state))
    print(json.dumps(json.loads(state.read_text()), indent=2))
    if info.updated:
        print(f"\nupdated the local stack that {info.aws_endpoint_url} held: its resources and their data kept")
    print(f"\nlocal stack up (state in {state}); Ctrl-C to stop")
    print(f"  upload : aws --endpoint-url {info.aws_endpoint_url} s3 cp photo.jpg s3://{info.bucket}/")
    print(f"  query  : curl {info.api_url}/tags/dog/images")
    print(f"  search : curl '{info.api_url}/search?q=a+dog+on+the+beach'")
    print(f"  deploy : python -m devstack redeploy --model-dir <dir> --state {state}", flush=True)
    stopped = threading.Event()
    # Explicit handlers: a job started in the background inherits SIGINT as ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        serve(stack, state, stopped)  # until stopped: redeploy requests
    stack.stop()
    Path(args.state).unlink(missing_ok=True)
    return 0


def redeploy_command(args: argparse.Namespace) -> int:
    """Against the running local stack: what `sam deploy` of another model directory does."""
    from cliptag.bundle import ModelBundle
    from cliptag.errors import ModelBundleError

    model_dir = Path(args.model_dir)
    try:  # refused here, before the stack is asked, when it is not a complete model directory
        bundle = ModelBundle.open(model_dir)
        version = bundle.vocabulary.version
    except ModelBundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    answer = request_redeploy(Path(args.state), model_dir, timeout_s=args.timeout)
    if not answer["ok"]:
        print(f"error: the stack refused {model_dir}: {answer['error']}", file=sys.stderr)
        return 1
    print(f"deployed {answer['model_dir']}: vocabulary {version}, {answer['tags']} tags ({answer['model']})")
    print("the functions run it now; `cliptag retag` re-tags what an earlier vocabulary tagged")
    return 0


def redrive_command(args: argparse.Namespace) -> int:
    """Against the running local stack (reads its state file)."""
    import boto3

    from devstack.redrive import redrive

    state = json.loads(Path(args.state).read_text())
    sqs = boto3.client(
        "sqs",
        endpoint_url=state["aws_endpoint_url"],
        region_name=state["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    moved = redrive(sqs, state["dead_letter_queue_url"], state["queue_url"])
    print(f"moved {moved} message(s) from the dead-letter queue back to the tagging queue")
    return 0


UP_DESCRIPTION = (
    "Start cliptag's local stack on loopback and keep it running until Ctrl-C: moto's AWS server "
    "with the bucket, tagging queue, dead-letter queue and table created from template.yaml, a "
    "poller that plays the SQS event source mapping for the tagger function, and an HTTP server "
    "that answers like `sam local start-api`. The endpoints are written to the state file. On an "
    "emulator that already holds the stack (--aws-endpoint), the stack is updated as `sam deploy` "
    "updates one: its resources and their data are kept, the functions run --model-dir."
)
REDEPLOY_DESCRIPTION = (
    "Deploy another model directory (e.g. one given a new vocabulary by `python -m model_export "
    "vocabulary`) to the running local stack, as `sam deploy` does in AWS: the functions switch to it "
    "and start again; the bucket, queues, table and search index keep their data. Then `cliptag retag` "
    "re-tags what the earlier vocabulary tagged. A model the functions cannot load is refused and the "
    "stack keeps its own. Reads the stack's state file."
)
DEMO_DESCRIPTION = (
    "Start the local stack, upload scikit-image's sample photos to the bucket, wait until "
    "S3 -> SQS -> tagger -> DynamoDB has tagged them, print each photo's top tags and the API's "
    "answer for the images of one tag, then stop. Exits 1 if a photo is not tagged in time."
)
REDRIVE_DESCRIPTION = (
    "Move every message of the running local stack's dead-letter queue back to the tagging queue, "
    "so the tagger retries them (after fixing what made them fail). Reads the stack's state file."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="cliptag's local stack on loopback: a real AWS API (moto) and the same events as in the cloud.",
    )
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    for name, fn, help_text, description in (
        ("up", up, "start the local stack and keep it running until Ctrl-C", UP_DESCRIPTION),
        ("demo", demo, "tag the sample photos through the local stack and print their tags", DEMO_DESCRIPTION),
    ):
        p = sub.add_parser(name, help=help_text, description=description)
        p.add_argument(
            "--model-dir",
            default="build/model-tiny",
            help="model directory written by `python -m model_export` (default: %(default)s)",
        )
        p.add_argument(
            "--api-port",
            type=int,
            default=3000,
            help="port of the local HTTP API, like `sam local start-api` (default: %(default)s)",
        )
        p.add_argument("--aws-port", type=int, default=0, help="port of moto's AWS server (default: a free port)")
        p.add_argument(
            "--state",
            default=str(DEFAULT_STATE_FILE),
            help="where to write the endpoints JSON that `redrive` and tools read (default: %(default)s)",
        )
        p.set_defaults(fn=fn)
        if name == "up":
            p.add_argument(
                "--existing-bucket",
                metavar="NAME",
                help="tag this bucket instead of creating one (created if missing): events through EventBridge, "
                "its own notification configuration kept, like ExistingBucketName",
            )
            p.add_argument(
                "--parameter",
                action="append",
                default=[],
                metavar="NAME=VALUE",
                help="a template parameter for the local stack, as `sam deploy --parameter-overrides` takes it "
                "(repeat it): e.g. --parameter TopK=5 --parameter NearDuplicates=On; checked against the template",
            )
            p.add_argument(
                "--caption-model-dir",
                default="build/captions-tiny-blip",
                help="with --parameter Captions=On: the caption model directory (`python -m model_export captions`), "
                "what CaptionModelS3Uri holds on AWS (default: %(default)s)",
            )
            p.add_argument(
                "--aws-endpoint",
                metavar="URL",
                help="use an AWS emulator already running (e.g. one holding your bucket) instead of starting moto",
            )
    p = sub.add_parser(
        "redeploy",
        help="deploy another model directory (a new vocabulary) to the running local stack",
        description=REDEPLOY_DESCRIPTION,
    )
    p.add_argument(
        "--model-dir",
        required=True,
        help="model directory written by `python -m model_export`, or given a new vocabulary by "
        "`python -m model_export vocabulary`",
    )
    p.add_argument(
        "--state",
        default=str(DEFAULT_STATE_FILE),
        help="the running stack's endpoints JSON, written by `up` (default: %(default)s)",
    )
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the stack's answer (default: %(default)s)"
    )
    p.set_defaults(fn=redeploy_command)
    p = sub.add_parser(
        "redrive",
        help="move dead-lettered messages back to the tagging queue",
        description=REDRIVE_DESCRIPTION,
    )
    p.add_argument(
        "--state",
        default=str(DEFAULT_STATE_FILE),
        help="the running stack's endpoints JSON, written by `up` (default: %(default)s)",
    )
    p.set_defaults(fn=redrive_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args))
