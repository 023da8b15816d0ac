"""``cliptag gallery``: its arguments, the stack it shows, and serving until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import re
import sys
import webbrowser
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials

from cliptag_cli.target import Target, add_target_arguments

LOOPBACK = "127.0.0.1"
DESCRIPTION = """\
Browse a cliptag stack in your browser: the vocabulary by category, each tag's and category's
images best first, free-text search, each image's tags, similar images and near-duplicates, and
the images that could not be tagged. A local web server on 127.0.0.1 signs every API call
(SigV4) with your AWS credentials and reads the pictures from S3 itself, sending the browser
resized renditions; the browser never holds a credential and the API keeps IAM auth."""
EPILOG = """\
the local stack (the default, like the other commands):
  make local MODEL=tiny          # in one terminal; writes build/local-stack.json
  cliptag gallery --open         # in another: http://127.0.0.1:8080/

a deployed stack, found by name through its outputs ApiUrl and ImagesBucketName:
  cliptag gallery --stack NAME [--region REGION] [--port 8080]
  (your usual AWS credentials: environment, profile or SSO; they need execute-api:Invoke on
  the API and s3:GetObject on the bucket)

Keyboard: / focuses the search box; arrow keys move through a grid; Enter opens.
More: docs/gallery.md"""


def _loopback(value: str) -> str:
    if value != LOOPBACK:
        raise argparse.ArgumentTypeError(f"{value!r}: the gallery listens on {LOOPBACK} only (it holds credentials)")
    return value


def _size(value: str) -> int:
    """A number of bytes: ``5GiB``, ``500MiB``, ``64KiB`` (1024-based; ``5G`` and ``5GB`` alike) or ``1048576``."""
    found = re.fullmatch(r"(\d+)\s*(?:([KMGT])i?)?B?", value.strip(), re.IGNORECASE)
    if found is None or int(found.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a size such as 5GiB, 500MiB or 1048576 (bytes)")
    power = " KMGT".index((found.group(2) or " ").upper())
    return int(found.group(1)) << (10 * power)


def add_gallery_parser(sub: Any) -> None:
    from cliptag_cli.gallery.originals import MAX_BYTES
    from cliptag_cli.gallery.renditions import default_cache_dir

    p = sub.add_parser(
        "gallery",
        help="browse tags, search and images in a web gallery on 127.0.0.1",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0: any free one)")
    p.add_argument("--host", type=_loopback, default=LOOPBACK, help=f"{LOOPBACK}, the only address it accepts")
    p.add_argument("--open", action="store_true", help="open the gallery in your web browser")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help=f"where resized pictures are kept (default {default_cache_dir()})",
    )
    p.add_argument(
        "--max-original-bytes",
        type=_size,
        default=MAX_BYTES,
        metavar="SIZE",
        help=f"larger originals are refused, not streamed (default {MAX_BYTES // 1024**3}GiB; e.g. 500MiB)",
    )
    p.add_argument("--verbose", action="store_true", help="log every request")
    add_target_arguments(p)
    p.set_defaults(fn=gallery)


def credentials(target: Target) -> Credentials:
    if target.endpoint_url:  # the local API checks no signature; sign anyway, as in AWS
        return Credentials("local", "local")
    found = boto3.Session(region_name=target.region).get_credentials()
    if found is None:
        raise SystemExit("no AWS credentials found (configure a profile, SSO or the AWS_* variables)")
    return found


def gallery(args: argparse.Namespace) -> int:
    from cliptag_cli.gallery.renditions import Renditions
    from cliptag_cli.gallery.server import GalleryServer, describe
    from cliptag_cli.gallery.teaching import GalleryTeacher
    from cliptag_cli.gallery.upstream import SignedApi

    target = Target.from_args(args)
    api = SignedApi(target.api_url, target.region, credentials(target))
    first = api.get("/tags")  # fail now, with the reason, rather than on every page
    if first.status != 200:
        print(f"error: {api.base_url}/tags answered {first.status}: {describe(first)}", file=sys.stderr)
        if target.endpoint_url:
            print("is the local stack running? (make local)", file=sys.stderr)
        return 1
    try:
        renditions = Renditions(target.client("s3"), target.bucket, args.cache_dir)
        teacher = GalleryTeacher(target)
        server = GalleryServer(api, renditions, args.port, max_original_bytes=args.max_original_bytes, teacher=teacher)
    except OSError as exc:
        print(f"error: cannot listen on {LOOPBACK}:{args.port}: {exc.strerror} (try --port)", file=sys.stderr)
        return 1
    server.verbose = args.verbose
    tags = json.loads(first.body)["count"]
    where = f"{tags:,} tags; s3://{target.bucket} via {api.base_url}"
    print(f"cliptag gallery on {server.url} ({where}); Ctrl-C stops it", flush=True)
    if args.open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()  # until Ctrl-C: `cliptag` prints one line and exits 130
    finally:
        server.server_close()
    return 0
