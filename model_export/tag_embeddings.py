"""Tag embeddings by prompt ensembling, through the exported ONNX text encoder.

Each tag's prompts (every template x the name and its synonyms, plus its descriptions, the
RAM++ idea) are embedded, normalised, averaged and renormalised into one row of [T, D].
Using the ONNX encoder and the ``tokenizers`` library means the vectors are exactly what the
runtime would compute for a free-text query.
"""

from __future__ import annotations

import numpy as np
from cliptag.scoring import l2_normalise
from cliptag.text import TextEncoder
from cliptag.vocabulary import TagSpec, Vocabulary
from numpy.typing import NDArray


def prompts_for(tag: TagSpec, templates: tuple[str, ...]) -> list[str]:
    terms = (tag.name, *tag.synonyms)
    return [template.format(term) for template in templates for term in terms] + list(tag.descriptions)


def all_prompts(vocab: Vocabulary) -> list[str]:
    return [p for tag in vocab.tags for p in prompts_for(tag, vocab.templates)]


def embed_vocabulary(encoder: TextEncoder, vocab: Vocabulary, progress: bool = True) -> NDArray[np.float32]:
    per_tag = [prompts_for(tag, vocab.templates) for tag in vocab.tags]
    flat = [p for prompts in per_tag for p in prompts]
    batch = 256
    chunks = []
    bar = _progress(len(flat), "tag prompts", progress)
    for start in range(0, len(flat), batch):
        chunks.append(encoder.embed(flat[start : start + batch]))
        bar(len(flat[start : start + batch]))
    vectors = np.concatenate(chunks)
    rows, offset = [], 0
    for prompts in per_tag:
        rows.append(vectors[offset : offset + len(prompts)].mean(axis=0))
        offset += len(prompts)
    return l2_normalise(np.stack(rows).astype(np.float32))


def _progress(total: int, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return lambda n: None
    bar = tqdm(total=total, desc=desc, unit="prompt", disable=not enabled)
    return bar.update
