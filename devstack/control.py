"""``python -m devstack redeploy``: give the running local stack's functions another model
directory, as ``sam deploy`` does in AWS, without stopping it (its bucket, queues, table and index
keep their data; the functions start again with the new model).

The functions run inside the ``python -m devstack up`` process. ``redeploy`` leaves a request
beside the stack's state file; ``up`` checks for one twice a second, checks the model directory,
switches the functions to it (their next invocation is a cold start, which happens at once),
rewrites the state file and leaves the result beside it. A model the functions cannot load is
refused and the stack keeps the one it had.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from devstack.stack import LocalStack

POLL_S = 0.5


def request_file(state: Path) -> Path:
    return state.with_name(f"{state.name}.redeploy")


def result_file(state: Path) -> Path:
    return state.with_name(f"{state.name}.redeployed")


def _write(path: Path, doc: dict[str, Any]) -> None:
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(json.dumps(doc, indent=2), "utf-8")
    os.replace(staged, path)  # the reader never sees half a file


# -- the stack's side (python -m devstack up) ---------------------------------------------------
def serve(stack: LocalStack, state: Path, stopped: threading.Event) -> None:
    """Until ``stopped``: carry out each redeploy request left beside ``state``."""
    request = request_file(state)
    while not stopped.wait(POLL_S):
        if request.is_file():
            try:
                doc = json.loads(request.read_text("utf-8"))
            except (OSError, ValueError):  # not written yet by a foreign writer; next round
                continue
            request.unlink(missing_ok=True)
            answer = deploy_model(stack, state, Path(str(doc.get("model_dir", ""))))
            _write(result_file(state), {"id": doc.get("id"), **answer})
    request.unlink(missing_ok=True)
    result_file(state).unlink(missing_ok=True)


def deploy_model(stack: LocalStack, state: Path, model_dir: Path) -> dict[str, Any]:
    """Switch the functions to ``model_dir`` and start them (the cold start of a deployment):
    {"ok": True, model, vocabulary, tags} or {"ok": False, "error"} with the old model kept."""
    from cliptag import wiring
    from cliptag.bundle import ModelBundle

    assert stack.info is not None
    previous, switched = stack.model_dir, False
    try:
        bundle = ModelBundle.open(model_dir.resolve())
        bundle.tag_embeddings  # noqa: B018 - every hash checked before the functions switch
        if bundle.embed_dim != int(stack.parameters["EmbeddingDimension"]):
            raise ValueError(
                f"{model_dir} embeds in {bundle.embed_dim} dimensions, the stack's search index in "
                f"{stack.parameters['EmbeddingDimension']}: stop the stack and start it with this model"
            )
        stack.redeploy(model_dir)
        switched = True
        wiring.pipeline()
    except Exception as exc:
        if switched:
            stack.redeploy(previous)
        print(f"redeploy of {model_dir} refused: {exc}", flush=True)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    stack.info.model_dir, stack.info.model = str(stack.model_dir), wiring.bundle().model_key
    stack.write_state(state)
    vocabulary = wiring.bundle().vocabulary
    print(f"redeployed: {stack.model_dir} (vocabulary {vocabulary.version}, {len(vocabulary.tags)} tags)", flush=True)
    return {
        "ok": True,
        "model_dir": str(stack.model_dir),
        "model": stack.info.model,
        "vocabulary": vocabulary.version,
        "tags": len(vocabulary.tags),
    }


# -- the command's side -------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def request_redeploy(state: Path, model_dir: Path, timeout_s: float = 120.0) -> dict[str, Any]:
    """Ask the ``up`` process behind ``state`` to deploy ``model_dir``; its answer. Raises
    SystemExit with the reason when there is no such process or it does not answer."""
    if not state.is_file():
        raise SystemExit(f"no local stack: {state} not found (start one with `make local` or `python -m devstack up`)")
    pid = int(json.loads(state.read_text("utf-8")).get("pid") or 0)
    if not pid or not _alive(pid):
        raise SystemExit(f"no running `python -m devstack up` behind {state} (pid {pid or 'unknown'}): start it again")
    ident = uuid.uuid4().hex
    result_file(state).unlink(missing_ok=True)
    _write(request_file(state), {"id": ident, "model_dir": str(model_dir.resolve())})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            answer: dict[str, Any] = json.loads(result_file(state).read_text("utf-8"))
        except (OSError, ValueError):
            answer = {}
        if answer.get("id") == ident:
            result_file(state).unlink(missing_ok=True)
            return answer
        if not _alive(pid):
            raise SystemExit(f"the stack's process (pid {pid}) stopped before it answered")
        time.sleep(0.2)
    request_file(state).unlink(missing_ok=True)
    raise SystemExit(f"the stack's process (pid {pid}) did not answer within {timeout_s:.0f} s")
