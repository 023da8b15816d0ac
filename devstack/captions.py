"""Captions=On on the local stack: the template's caption queue through the emulator's
CloudFormation, the caption function polling it (as its SQS event source mapping does), and the
tagger sending it new contents."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from devstack.lambda_emulation import EventSourceMapping
from devstack.resources import STACK_NAME, deploy_stack

if TYPE_CHECKING:
    from devstack.stack import LocalStack


def start(stack: LocalStack, caption_model_dir: Path) -> str:
    """The caption queue's URL, once the function polls it with ``caption_model_dir``."""
    stack.parameters = {**stack.parameters, "Captions": "On"}
    cfn = stack.client("cloudformation")
    local = stack._local_template
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in stack.parameters.items() if k in local["Parameters"]]
    deploy_stack(cfn, json.dumps(local), params)
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
        if "LogicalResourceId" in r
    }
    sqs, url = stack.client("sqs"), resources["CaptionQueue"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    os.environ.update(CAPTION_QUEUE_URL=url, CAPTION_MODEL_DIR=str(Path(caption_model_dir).resolve()))
    os.environ["CAPTION_MODEL_S3_URI"] = ""
    from cliptag import wiring

    wiring.reset()
    stack.captions = mapping = EventSourceMapping(sqs, url, arn, 4, stack._window(), function="captioner")
    stack._captions_stop = threading.Event()
    thread = threading.Thread(target=mapping.run, args=(stack._captions_stop,), name="caption-poller", daemon=True)
    thread.start()
    stack._captions_thread = thread
    if stack.info is not None:
        stack.info.caption_queue_url = str(url)
    return str(url)


def stop(stack: LocalStack) -> None:
    stack._captions_stop.set()
    if stack._captions_thread is not None:
        stack._captions_thread.join(timeout=30)
    stack.parameters = {**stack.parameters, "Captions": "Off"}
    if stack.info is not None:
        stack.info.caption_queue_url = ""
    os.environ["CAPTION_QUEUE_URL"] = ""
    from cliptag import wiring

    wiring.reset()
