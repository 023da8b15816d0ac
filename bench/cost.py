"""Cost per 1,000 images, priced at three handler times: measured against the local emulator (an
upper bound: moto answers one request at a time on the same 2 cores), with AWS answered
in-process (a lower bound: our own code, no network wait), and in between with each call
waiting a typical AWS round trip; plus requests, SQS, S3 GETs and the metered DynamoDB writes."""

from __future__ import annotations

from bench.common import (
    DYNAMODB_PER_WRU,
    LAMBDA_GB_SECOND,
    LAMBDA_PER_REQUEST,
    REKOGNITION_PER_1000,
    S3_GET_PER_REQUEST,
    SQS_PER_REQUEST,
)
from bench.context import Bench, Measure


def run(bench: Bench) -> None:
    writes_per_image: float = bench.data["write_units_per_image"]
    memory_mb, batch = bench.args.memory_mb, bench.args.batch_size
    gb = memory_mb / 1024
    times = {
        "local emulator": bench.data["handler_ms_per_image"] / 1000,
        "in-process AWS": bench.data["handler_no_network_ms_per_image"] / 1000,
        "modelled AWS latency": bench.data["handler_aws_latency_ms_per_image"] / 1000,
    }
    others = (
        LAMBDA_PER_REQUEST / batch * 1000
        + SQS_PER_REQUEST * (1 + 2 / batch) * 1000  # S3's send + batched receive/delete
        + S3_GET_PER_REQUEST * 1000
        + DYNAMODB_PER_WRU * writes_per_image * 1000
    )
    bench.section(
        f"cost per 1,000 images at {memory_mb} MB, batch of {batch}, {writes_per_image:.0f} WRU/image"
        " (compute / all-in: + requests, SQS, S3 GET, DynamoDB)"
    )
    for arch, price in LAMBDA_GB_SECOND.items():
        for label, seconds in times.items():
            compute = seconds * gb * price * 1000
            total = compute + others
            slug = label.split()[0].replace("-", "_")
            bench.data[f"cost_compute_{arch}_{slug}"] = compute
            bench.data[f"cost_total_{arch}_{slug}"] = total
            bench.row(
                "cost",
                f"{arch}, handler time {label} ({seconds * 1000:.0f} ms/image)",
                f"${compute:.5f} / ${total:.5f}  ({REKOGNITION_PER_1000 / total:.0f}x cheaper than Rekognition)",
            )


MEASURE = Measure(
    "cost", "cost per 1,000 images at three handler times, x86_64 and arm64", run, ("stages", "inprocess", "writes")
)
