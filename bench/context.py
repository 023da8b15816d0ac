"""One benchmark run: its options and scale, the rows it prints, the JSON it writes, and what the
measures share (the photos, the local stack, the tagging pipeline, results handed on)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from bench.common import big_jpeg

if TYPE_CHECKING:
    from cliptag.imaging import Preprocessing
    from cliptag.pipeline import TaggingPipeline

    from devstack.stack import LocalStack

T = TypeVar("T")
StackKind = Literal["batches", "poller"]  # the local stack without its SQS poller, or with it


@dataclass(frozen=True)
class Scale:
    """How much work the measures do: the full benchmark, or a quick smoke run (``--quick``)."""

    batches: int  # batches through the stages and the handler
    e2e_images: int  # uploads through the local stack
    cold_runs: int  # fresh interpreters per cold-start mode (median of)
    ort_rounds: int  # round-robin runs of the ORT variants (median of)
    ort_singles: int  # one-image calls (median of all but the first)
    handler_runs: int  # in-process handler: runs per median, and tuned/default alternations
    big_jpegs: int  # 12 MP JPEGs decoded
    big_pngs: int  # 6 MP PNGs decoded
    decode_repeats: int  # decodes of each 12 MP JPEG per mode
    memory_jpegs: int  # 12 MP JPEGs in the peak-RSS batch
    rescore_rows: int  # stored embeddings re-scored in bulk
    rescore_checked: int  # of which compared with the live scorer
    backfill_objects: int  # listed and enqueued by a backfill (no poller)
    backfill_dry_run: int  # listed by a backfill's dry run
    retag_objects: int  # re-tagged after each vocabulary edit


FULL = Scale(
    batches=6,
    e2e_images=60,
    cold_runs=5,
    ort_rounds=7,
    ort_singles=10,
    handler_runs=3,
    big_jpegs=4,
    big_pngs=2,
    decode_repeats=2,
    memory_jpegs=10,
    rescore_rows=50_000,
    rescore_checked=8_192,
    backfill_objects=2_000,
    backfill_dry_run=10_000,
    retag_objects=200,
)
QUICK = dataclasses.replace(
    FULL,
    batches=1,
    e2e_images=10,
    cold_runs=1,
    ort_rounds=2,
    ort_singles=3,
    handler_runs=1,
    big_jpegs=1,
    big_pngs=1,
    decode_repeats=1,
    memory_jpegs=2,
    rescore_rows=4_096,
    rescore_checked=2_048,
    backfill_objects=200,
    backfill_dry_run=1_000,
    retag_objects=40,
)


@dataclass(frozen=True)
class Measure:
    """One measure: ``run`` prints its rows; ``needs`` run before it (their figures feed it)."""

    name: str
    title: str
    run: Callable[[Bench], None]
    needs: tuple[str, ...] = ()
    stack: StackKind | None = None  # the local stack it talks to, if any


class Bench:
    """The run the measures share: print rows through ``row``, hand figures on through ``results``."""

    def __init__(self, args: argparse.Namespace, scale: Scale, photos: list[bytes]) -> None:
        self.args = args
        self.scale = scale
        self.photos = photos
        self.rows: list[tuple[str, str, str]] = []  # (section, name, value)
        self.data: dict[str, Any] = {}  # written as JSON
        self.results: dict[str, Any] = {}  # handed from one measure to the next (not written)
        self._stack: LocalStack | None = None
        self._stack_kind: StackKind | None = None
        self._wired = False
        self._big_jpegs: list[bytes] = []

    @property
    def model_dir(self) -> Path:
        path: Path = self.args.model_dir
        return path

    def section(self, title: str) -> None:
        print(f"\n{title}", flush=True)

    def row(self, section: str, name: str, value: str, key: str | None = None, number: float | None = None) -> None:
        self.rows.append((section, name, value))
        if key is not None:
            self.data[key] = number
        print(f"  {name:<58} {value}", flush=True)

    def once(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, measured once per run and kept for the measures after it."""
        if name not in self.results:
            self.results[name] = compute()
        value: T = self.results[name]
        return value

    # -- shared fixtures --------------------------------------------------------------------------
    def stack(self, kind: StackKind) -> LocalStack:
        """The local stack (moto in its own process), started on first use; one at a time."""
        from devstack.stack import LocalStack

        if self._stack is not None and self._stack_kind != kind:
            self.close_stack()
        if self._stack is None:
            stack = LocalStack(self.model_dir, api_port=0, moto_process=True, poll=kind == "poller")
            stack.start()  # points every AWS client at it and wires the functions (cold start now)
            self._stack, self._stack_kind, self._wired = stack, kind, True
        return self._stack

    def close_stack(self, unless: StackKind | None = None) -> None:
        if self._stack is not None and self._stack_kind != unless:
            self._stack.stop()
            self._stack = self._stack_kind = None

    def pipeline(self) -> TaggingPipeline:
        """The tagger's pipeline as the function builds it (wired to the local stack if one ran)."""
        from cliptag import wiring

        if not self._wired:
            # No stack ran: the measures replace the pipeline's AWS ports, but building it records
            # the deployment in DynamoDB. moto's in-process mock answers that (no table: a logged
            # warning, silenced here), so no request can leave this machine.
            from moto import mock_aws

            os.environ.update(MODEL_DIR=str(self.model_dir), MODEL_S3_URI="")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            logging.disable(logging.WARNING)
            try:
                with mock_aws():
                    wiring.reset()
                    wiring.pipeline()
            finally:
                logging.disable(logging.NOTSET)
            self._wired = True
        return wiring.pipeline()

    def preprocessing(self) -> Preprocessing:
        from cliptag.bundle import ModelBundle

        return ModelBundle.open(self.model_dir).preprocessing

    def big_jpegs(self, count: int) -> list[bytes]:
        """12 MP JPEGs upscaled from the first ``count`` photos (made once, shared by the measures)."""
        self._big_jpegs += [big_jpeg(p) for p in self.photos[len(self._big_jpegs) : count]]
        return self._big_jpegs[:count]
