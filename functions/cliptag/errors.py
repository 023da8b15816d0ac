"""The two kinds of failure the tagger distinguishes.

A *permanent* failure belongs to the input (not an image, too many pixels, too large): retrying
cannot help, so the object is recorded as failed and its message acknowledged. A *transient*
failure (throttling, timeouts) fails only that message so SQS redelivers it, and after the
configured receives it lands in the dead-letter queue.
"""


class PermanentError(Exception):
    """The input itself is bad; record it as failed and do not retry."""


class TransientError(Exception):
    """A dependency failed for now; let SQS redeliver the message."""


class ModelBundleError(Exception):
    """The model directory is incomplete, tampered with, or mismatched."""


class ObjectGone(Exception):
    """The object was deleted before we read it: nothing to tag (its delete event follows)."""


class ObjectChanged(Exception):
    """The object no longer holds the bytes a message was made for (GET If-Match failed): the
    newer bytes have their own event."""


class MalformedEvent(ValueError):
    """A queue message that is not an S3 event we understand (acknowledged and logged: a retry
    cannot fix it)."""
