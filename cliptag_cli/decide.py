"""``cliptag confirm`` and ``cliptag reject``: a person's decision on one tag of one image, through
the API (SigV4-signed with your credentials, which need the stack's ApiWritePolicyArn), so it is
recorded with your IAM identity and applied to every object holding the same bytes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from cliptag_cli.target import Target


def decide(args: argparse.Namespace) -> int:
    from cliptag_cli.gallery.command import credentials
    from cliptag_cli.gallery.upstream import SignedApi

    target = Target.from_args(args)
    api = SignedApi(target.api_url, target.region, credentials(target))
    confirm = args.command == "confirm"
    answer = api.decide(f"/images/{quote(args.key, safe='')}/tags/{quote(args.tag, safe='')}", confirm)
    body: dict[str, Any] = json.loads(answer.body or b"{}")
    if answer.status != 202:
        hint = f" (did you mean: {', '.join(body['suggestions'])}?)" if body.get("suggestions") else ""
        print(f"error: {answer.status}: {body.get('error') or body.get('message') or body}{hint}", file=sys.stderr)
        return 1
    decision = body["decision"]
    print(
        f"{decision['verdict']} {decision['tag']!r} on s3://{body['bucket']}/{body['key']} (by {decision['by']});"
        f" {body['retagging']} object(s) with these bytes are being re-tagged"
    )
    return 0


def add_decision_parsers(sub: Any, add_target_arguments: Callable[[argparse.ArgumentParser], None]) -> None:
    for name, verb in (("confirm", "confirm"), ("reject", "reject")):
        p = sub.add_parser(
            name,
            help=f"{verb} a tag of an image (and of every copy of its bytes)",
            description=f"{verb.capitalize()} TAG on the image at KEY: recorded on its bytes with your IAM identity, "
            "kept through re-tags, vocabulary edits and re-uploads of the same bytes, and applied by the tagger to "
            "every object holding them (no model). "
            + ("A confirmed tag is listed first." if name == "confirm" else "The model never gives it to them again."),
        )
        p.add_argument("key", help="the object key")
        p.add_argument("tag", help="a tag of the vocabulary (or a synonym), any case")
        add_target_arguments(p)
        p.set_defaults(fn=decide)
