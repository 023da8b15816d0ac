"""What the job commands print: a progress bar on stderr, cost lines, and the bucket's size."""

from __future__ import annotations

import sys
import time
from typing import Any

from cliptag_cli.target import Target


def bar(unit: str, total: int | None = None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, dynamic_ncols=True, file=sys.stderr)


def cost_line(lines: dict[str, float], what: str = "estimated cost") -> str:
    parts = ", ".join(f"{name} ${value:,.4f}" for name, value in lines.items())
    return f"{what} ${sum(lines.values()):,.4f} ({parts})"


def object_count(target: Target, prefix: str) -> int | None:
    """The bucket's object count from S3's daily CloudWatch metric (for the progress bar's ETA);
    None where there is none (a new bucket, the local stack) or only part of the bucket is listed."""
    if prefix:
        return None
    now = time.time()
    try:
        points = target.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/S3",
            MetricName="NumberOfObjects",
            Dimensions=[
                {"Name": "BucketName", "Value": target.bucket},
                {"Name": "StorageType", "Value": "AllStorageTypes"},
            ],
            StartTime=now - 3 * 86400,
            EndTime=now,
            Period=86400,
            Statistics=["Average"],
        )["Datapoints"]
    except Exception:  # no permission, no metric: a bar without an ETA
        return None
    return int(max(points, key=lambda p: p["Timestamp"])["Average"]) if points else None
