"""The stored form of an embedding: int8 with one scale per vector.

512 dimensions fit in ~0.5 KB, so a cached embedding is one DynamoDB write unit instead of two
(float16), at a cosine of ~0.9999 to the original. Every key is tagged from this stored form,
the first one included, so a duplicate gets exactly the same tags.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cliptag.scoring import l2_normalise


def encode(vector: NDArray[np.float32]) -> tuple[bytes, float]:
    scale = float(np.abs(vector).max()) or 1.0
    quantised = np.clip(np.rint(vector / scale * 127.0), -127, 127).astype(np.int8)
    return quantised.tobytes(), scale


def decode(data: bytes, scale: float) -> NDArray[np.float32]:
    """The unit vector the codes stand for. The scale does not enter: normalising removes it, and
    leaving it out makes decode(encode(decode(c))) bit-identical to decode(c), so a content's tags
    are the same whether scored when it was embedded or later from the table."""
    del scale  # kept in the item for the raw magnitude; not needed for a direction
    unit: NDArray[np.float32] = l2_normalise(np.frombuffer(data, dtype=np.int8).astype(np.float32)[None, :])[0]
    return unit


def round_trip(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    return decode(*encode(vector))
