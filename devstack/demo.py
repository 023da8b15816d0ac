"""``python -m devstack demo``: the local stack with sample photos, their tags, a tag page, a
search and similar images, through the real HTTP API."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from devstack.stack import LocalStack


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def image_tags_url(api_url: str, key: str) -> str:
    return f"{api_url}/images/{urllib.parse.quote(key, safe='')}/tags"


def wait_for_tags(api_url: str, keys: list[str], timeout_s: float) -> dict[str, Any]:
    """Poll the API until every key has a record (tagged or failed)."""
    done: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while len(done) < len(keys) and time.monotonic() < deadline:
        for key in keys:
            if key not in done:
                status, body = _get(image_tags_url(api_url, key))
                if status == 200:
                    done[key] = body
        time.sleep(0.3)
    return done


def demo(args: argparse.Namespace) -> int:
    from model_export.photos import skimage_photos

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    photos = skimage_photos()
    if not photos:
        print("error: scikit-image (which ships the sample photos) is not installed", file=sys.stderr)
        return 1
    with LocalStack(Path(args.model_dir), api_port=args.api_port, moto_port=args.aws_port) as stack:
        info = stack.info
        assert info is not None
        stack.write_state(Path(args.state))
        manifest = json.loads((Path(args.model_dir) / "manifest.json").read_text())
        random_note = (
            " (RANDOM WEIGHTS: tags are meaningless, the pipeline is real)"
            if manifest["model"]["source"].startswith("random")
            else ""
        )
        print(f"model: {manifest['model']['id']} [{manifest['image_encoder']['quantization']}]{random_note}")
        print(f"local AWS {info.aws_endpoint_url}, API {info.api_url}, bucket {info.bucket}\n")
        s3 = stack.client("s3")
        keys = [f"samples/{p.name}" for p in photos]
        started = time.monotonic()
        for path, key in zip(photos, keys, strict=True):
            s3.put_object(Bucket=info.bucket, Key=key, Body=path.read_bytes())
        results = wait_for_tags(info.api_url, keys, timeout_s=120)
        elapsed = time.monotonic() - started
        print(f"{'image':<34} {'size':>10}  top tags (score)")
        for key in keys:
            body = results.get(key)
            if body is None:
                print(f"{key:<34} {'':>10}  NOT TAGGED within the timeout")
                continue
            tags = ", ".join(f"{t['tag']} ({t['score']:.3f})" for t in body["tags"][:5]) or body.get("error", "")
            print(f"{key:<34} {body['width']:>4}x{body['height']:<5}  {tags}")
        print(f"\n{len(results)}/{len(keys)} photos tagged in {elapsed:.1f} s through S3 -> SQS -> tagger -> DynamoDB")
        first = next((b for b in results.values() if b["tags"]), None)
        if first:
            tag = first["tags"][0]["tag"]
            url = f"{info.api_url}/tags/{urllib.parse.quote(tag)}/images?limit=5"
            status, body = _get(url)
            print(f"\nGET {url} -> {status}")
            for img in body.get("images", []):
                print(f"  {img['score']:.3f}  s3://{img['bucket']}/{img['key']}")
        _search_demo(info.api_url, keys[0], meaningless=bool(random_note))
        Path(args.state).unlink(missing_ok=True)
        return 0 if len(results) == len(keys) else 1


def _search_demo(api_url: str, key: str, meaningless: bool) -> None:
    """One free-text search and one similar-images query through the HTTP API."""
    if meaningless:
        print("\nsearch by meaning (random weights: the rankings below are meaningless, the path is real)")
    queries = [
        f"/search?q={urllib.parse.quote('a cat sleeping on a sofa')}&limit=3",
        f"/images/{urllib.parse.quote(key, safe='')}/similar?limit=3",
    ]
    for path in queries:
        status, body = _get(api_url + path)
        print(f"\nGET {api_url}{path} -> {status}")
        for img in body.get("images", []):
            tags = ", ".join(t["tag"] for t in img["tags"][:3])
            print(f"  {img['score']:.3f}  s3://{img['bucket']}/{img['key']}  ({tags})")
