"""What every AWS adapter does with an error botocore's retries left: throttling, timeouts and
dropped connections become TransientError (only their SQS message is redelivered); the rest is
raised as it is."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from cliptag.errors import TransientError


@contextmanager
def errors_mapped(service: str, transient_codes: Collection[str], server_errors: bool = False) -> Iterator[None]:
    """``transient_codes``, and with ``server_errors`` any 5xx answer, become TransientError."""
    try:
        yield
    except BotoCoreError as exc:  # timeouts, connection resets
        raise TransientError(f"{service} {type(exc).__name__}: {exc}") from exc
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in transient_codes or (server_errors and status >= 500):
            raise TransientError(f"{service} {code}") from exc
        raise
