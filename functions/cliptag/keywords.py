"""Keywords from a caption, KeyBERT's method with the CLIP text encoder, kept only where CLIP
agrees with the image.

1. Candidates: the caption's 1-3 word phrases once stop words are out (as KeyBERT's default
   ``CountVectorizer(ngram_range=(1, 3), stop_words="english")`` forms them).
2. Relevance: each candidate's cosine with the whole caption, both embedded by the CLIP text
   encoder the API already ships (no other model).
3. Diversity: maximal marginal relevance, KeyBERT's ``mmr``: the most relevant first, then each
   next one for relevance minus ``diversity`` times its likeness to those already kept.
4. Confirmation: each kept phrase, embedded as the vocabulary's tags are ("a photo of ..."), is
   scored against the content's stored image embedding like a tag; only those at or above the
   threshold stay. The image is never encoded again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cliptag.scoring import COSINE, ScoreTransform, l2_normalise

TOP_N = 5
DIVERSITY = 0.5
MAX_WORDS = 3
IMAGE_TEMPLATE = "a photo of {}."
# English stop words (scikit-learn's list, which KeyBERT uses through CountVectorizer).
_STOP_WORDS_TEXT = """
a about above across after afterwards again against all almost alone along already also although always am
among amongst amoungst amount an and another any anyhow anyone anything anyway anywhere are around as at back be
became because become becomes becoming been before beforehand behind being below beside besides between beyond
bill both bottom but by call can cannot cant co con could couldnt cry de describe detail do done down due during
each eg eight either eleven else elsewhere empty enough etc even ever every everyone everything everywhere except
few fifteen fifty fill find fire first five for former formerly forty found four from front full further get give
go had has hasnt have he hence her here hereafter hereby herein hereupon hers herself him himself his how however
hundred i ie if in inc indeed interest into is it its itself keep last latter latterly least less ltd made many
may me meanwhile might mill mine more moreover most mostly move much must my myself name namely neither never
nevertheless next nine no nobody none noone nor not nothing now nowhere of off often on once one only onto or
other others otherwise our ours ourselves out over own part per perhaps please put rather re same see seem seemed
seeming seems serious several she should show side since sincere six sixty so some somehow someone something
sometime sometimes somewhere still such system take ten than that the their them themselves then thence there
thereafter thereby therefore therein thereupon these they thick thin third this those though three through
throughout thru thus to together too top toward towards twelve twenty two un under until up upon us very via was
we well were what whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
whether which while whither who whoever whole whom whose why will with within without would yet you your yours
yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[a-z][a-z0-9'-]*[a-z0-9]|[a-z]")


@dataclass(frozen=True)
class Keyword:
    phrase: str
    relevance: float  # cosine with the caption (text to text)
    score: float  # with the image, in the model's tag units (cosine, or SigLIP's probability)


def candidates(caption: str, max_words: int = MAX_WORDS) -> list[str]:
    """The caption's phrases of 1..max_words words, stop words out, each once, in order."""
    words = [w for w in _WORD.findall(caption.casefold()) if w not in STOP_WORDS and len(w) > 1]
    found = [" ".join(words[i : i + n]) for n in range(1, max_words + 1) for i in range(len(words) - n + 1)]
    return list(dict.fromkeys(found))


def mmr(
    document: NDArray[np.float32], phrases: NDArray[np.float32], top_n: int = TOP_N, diversity: float = DIVERSITY
) -> list[int]:
    """KeyBERT's maximal marginal relevance over unit vectors: the chosen rows, in order."""
    relevance = phrases @ document
    likeness = phrases @ phrases.T
    chosen = [int(np.argmax(relevance))]
    left = [i for i in range(len(phrases)) if i != chosen[0]]
    while left and len(chosen) < top_n:
        similar = likeness[np.ix_(left, chosen)].max(axis=1)
        gain = (1 - diversity) * relevance[left] - diversity * similar
        chosen.append(left.pop(int(np.argmax(gain))))
    return chosen


def keywords(
    caption: str,
    embed: Callable[[list[str]], NDArray[np.float32]],
    image: NDArray[np.float32],
    threshold: float | None,
    transform: ScoreTransform = COSINE,
    top_n: int = TOP_N,
    diversity: float = DIVERSITY,
) -> list[Keyword]:
    """The caption's keywords that the image confirms, most relevant first (module docstring).
    ``embed``: texts -> CLIP text embeddings; ``image``: the content's stored image embedding;
    ``threshold``: the deployed model's tag threshold (None: every ranked phrase stays)."""
    phrases = candidates(caption)
    if not phrases:
        return []
    texts = [caption, *phrases, *(IMAGE_TEMPLATE.format(p) for p in phrases)]
    vectors = l2_normalise(embed(texts))
    document, plain, templated = vectors[0], vectors[1 : 1 + len(phrases)], vectors[1 + len(phrases) :]
    order = mmr(document, plain, top_n, diversity)
    scores = transform.apply((templated[order] @ l2_normalise(image[None, :])[0]).astype(np.float32))
    found = [
        Keyword(phrases[i], round(float(plain[i] @ document), 6), round(float(s), 6))
        for i, s in zip(order, scores.tolist(), strict=True)
    ]
    return [k for k in found if threshold is None or k.score >= threshold]


def joined(found: Sequence[Keyword], resolve: Callable[[str], str | None]) -> list[tuple[str, Keyword]]:
    """Each keyword under the name it is tagged with: a vocabulary tag or synonym joins that tag
    (``resolve``: the lexicon), any other phrase is an open tag of its own; each name once."""
    named: dict[str, Keyword] = {}
    for k in found:
        named.setdefault(resolve(k.phrase) or k.phrase, k)
    return list(named.items())
