"""What a tag page of camera photos costs the browser: bytes sent and time until every picture
is shown, with the gallery's thumbnails (first load, from the disk cache, a browser reload) and
with the originals instead.

    .venv/bin/python -m cliptag_cli.gallery.measure [--photos 100] [--model-dir build/model-tiny]

Starts the local stack (moto in its own process), uploads N 12 MP JPEGs (COCO photos upscaled
to 4000 x 3000 like the benchmark's ``big_jpeg``), waits until they are tagged, and opens the
page of the tag most of them share in headless Chromium, fresh profile each time, in a viewport
tall enough (1280 x 4000) that continuous scrolling loads every page and every picture without
a scroll. Bytes are the browser's own count (Resource Timing ``transferSize``: headers and
bodies of the page, its scripts, the API answers and the pictures). The image encoder plays no
part here: the tiny model tags as fast and the figures are the same. Run from the repository
(it uses ``bench.common`` and ``../shared/data``); docs/gallery.md has one run's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.credentials import Credentials

from cliptag_cli.gallery import chromium
from cliptag_cli.gallery.renditions import SIZES, Renditions, resize
from cliptag_cli.gallery.server import GalleryServer
from cliptag_cli.gallery.upstream import SignedApi

# Resolves once every grid picture of the page is loaded and decoded (a 12 MP decode is not
# free): (ms since the navigation, pictures that failed).
ALL_SHOWN = """
const [count, done] = arguments;
(function poll() {
  const pictures = [...document.querySelectorAll('.grid img')];
  if (pictures.length < count || !pictures.every((i) => i.complete)) return setTimeout(poll, 20);
  Promise.all(pictures.map((i) => i.decode().then(() => 0, () => 1)))
    .then((failed) => done([performance.now(), failed.reduce((a, b) => a + b, 0)]));
})();
"""
SENT = (
    "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
    ".map((e) => [e.name, e.transferSize])"
)


class CountingS3:
    """An S3 client that counts the bytes its GetObject calls return."""

    def __init__(self, s3: Any) -> None:
        self.s3, self.gets, self.bytes = s3, 0, 0

    def get_object(self, **kwargs: Any) -> Any:
        obj = self.s3.get_object(**kwargs)
        self.gets += 1
        self.bytes += int(obj["ContentLength"])
        return obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


def upload(stack: Any, count: int) -> dict[str, int]:
    """``count`` 12 MP JPEGs in the stack's bucket, tagged: key -> bytes."""
    from bench.common import big_jpeg
    from model_export.photos import coco_photos

    photos = coco_photos()[:count]
    if len(photos) < count:
        raise SystemExit(f"{len(photos)} COCO photos found, {count} wanted (../shared/data/images/coco-val2017)")
    s3, sizes = stack.client("s3"), {}
    for i, photo in enumerate(photos):
        body = big_jpeg(photo.read_bytes())
        key = f"camera/{i:03d}.jpg"
        s3.put_object(Bucket=stack.info.bucket, Key=key, Body=body)
        sizes[key] = len(body)
    return sizes


def records(api: SignedApi, keys: list[str], timeout_s: float = 600.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    found: dict[str, dict[str, Any]] = {}
    while len(found) < len(keys) and time.monotonic() < deadline:
        for key in keys:
            if key not in found and (answer := api.get(f"/images/{quote(key, safe='')}/tags")).status == 200:
                found[key] = json.loads(answer.body)
        time.sleep(0.5)
    if len(found) < len(keys):
        raise SystemExit(f"{len(keys) - len(found)} photos not tagged after {timeout_s:.0f} s")
    return list(found.values())


def load(server: GalleryServer, route: str, count: int, reload: bool = False) -> dict[str, float]:
    """One fresh browser's load of ``route`` (``reload``: its second load, the pictures revalidated)."""
    s3: CountingS3 = server.renditions.s3
    with chromium.chromium() as driver:
        chromium.viewport(driver, 1280, 4000)
        driver.set_script_timeout(900)
        driver.get(server.url + route)
        if reload:
            driver.execute_async_script(ALL_SHOWN, count)
            driver.refresh()
        read_before = s3.bytes
        ms, broken = driver.execute_async_script(ALL_SHOWN, count)
        sent = driver.execute_script(SENT)
    if broken:
        raise SystemExit(f"{broken} pictures did not load")
    pictures = sum(size for name, size in sent if "/img/" in name)
    total = sum(size for _, size in sent)
    return {"seconds": ms / 1000, "bytes": total, "picture_bytes": pictures, "s3_bytes": s3.bytes - read_before}


def resize_ms(bodies: list[bytes], size: int) -> float:
    times = []
    for body in bodies:
        start = time.perf_counter()
        resize(body, size)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def rounds(api: SignedApi, s3: Any, bucket: str, route: str, count: int, cache: Path) -> dict[str, dict[str, float]]:
    """One round of the four loads, each in a fresh browser; the renditions' cache starts empty."""
    servers = [
        GalleryServer(api, Renditions(CountingS3(s3), bucket, cache / name, sizes), port=0)
        for name, sizes in (("originals", {"grid": None, "large": None}), ("renditions", SIZES))
    ]
    for server in servers:
        server.start()
    originals, thumbnails = servers
    try:
        return {
            "originals": load(originals, route, count),
            "thumbnails, first load (resized)": load(thumbnails, route, count),
            "thumbnails, from the disk cache": load(thumbnails, route, count),
            "thumbnails, browser reload (304s)": load(thumbnails, route, count, reload=True),
        }
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def measure(model_dir: Path, count: int, repeats: int) -> dict[str, Any]:
    from devstack.stack import LocalStack

    os.environ.update(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR")
    with LocalStack(model_dir, api_port=0, moto_process=True) as stack, tempfile.TemporaryDirectory() as cache:
        assert stack.info is not None
        sizes = upload(stack, count)
        api = SignedApi(stack.info.api_url, stack.info.region, Credentials("local", "local"))
        tag, listed = Counter(t["tag"] for r in records(api, list(sizes)) for t in r["tags"]).most_common(1)[0]
        s3, bucket = stack.client("s3"), stack.info.bucket
        runs = [rounds(api, s3, bucket, f"#/tag/{quote(tag)}", listed, Path(cache) / str(i)) for i in range(repeats)]
        # Bytes are the same every round; times are the median round's.
        loads = {
            name: {**row, "seconds": statistics.median(r[name]["seconds"] for r in runs)}
            for name, row in runs[0].items()
        }
        some = [s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in list(sizes)[:5]]
        renditions = Renditions(s3, bucket, Path(cache) / "0" / "renditions")
        large = [len(renditions.get("large", key).body) for key in sizes]
    return {
        "photos": count,
        "tag": tag,
        "listed": listed,
        "repeats": repeats,
        "loads": loads,
        "original_bytes_mean": statistics.mean(sizes.values()),
        "large_bytes_mean": statistics.mean(large),
        "resize_ms": {name: resize_ms(some, size) for name, size in SIZES.items()},
    }


def report(result: dict[str, Any]) -> None:
    print(f"\ntag page of {result['listed']} camera photos (4000 x 3000 JPEG), '{result['tag']}', 1280 x 4000 viewport")
    print(f"  (times: median of {result['repeats']} rounds, each load in a fresh browser)")
    print(f"  {'':<36} {'to the browser':>15} {'of which pictures':>18} {'read from S3':>13} {'all shown':>10}")
    for name, row in result["loads"].items():
        sent, pictures, read = (row[k] / 1e6 for k in ("bytes", "picture_bytes", "s3_bytes"))
        print(f"  {name:<36} {sent:>12.2f} MB {pictures:>15.2f} MB {read:>10.1f} MB {row['seconds']:>8.2f} s")
    print(
        f"  per picture: original {result['original_bytes_mean'] / 1e6:.2f} MB, "
        f"large rendition (image page) {result['large_bytes_mean'] / 1e3:.0f} KB"
    )
    for name, ms in result["resize_ms"].items():
        print(f"  resize 12 MP -> {SIZES[name]} px ({name}), one thread, median: {ms:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cliptag_cli.gallery.measure", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("build/model-tiny"))
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the four loads; times are medians")
    parser.add_argument("--json", type=Path, default=Path("build/gallery-measure.json"))
    args = parser.parse_args(argv)
    reason = chromium.missing()
    if reason:
        raise SystemExit(f"no headless Chromium: {reason}")
    result = measure(args.model_dir, args.photos, args.repeats)
    report(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
