"""Free-text search queries for judging a text encoder: realistic photo-search phrases
("a dog running on the beach", "red car parked at night"), built deterministically from the
default vocabulary's tags, scenes and attributes.

What users type into the search box is not what the tag prompts look like ("a photo of a dog."):
shorter or longer, with colours, places, times and actions combined. The export compares the
quantized text encoder with fp32 on these, and the benchmark measures them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

from cliptag.vocabulary import Vocabulary

from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary

QUERIES = 1000
SEED = 20240512
# Slot -> the default vocabulary's categories that fill it, less the names that read badly there
# ("a feet hiking", "a bicycle on the clouds").
SLOTS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "person": (
        ("people",),
        frozenset({"face", "smile", "hand", "feet", "hair", "beard", "eyes", "silhouette", "shadow", "reflection"})
        | {"portrait", "selfie", "crowd", "group of people", "family", "couple"},
    ),
    "animal": (("animal", "bird"), frozenset({"pet", "livestock", "wildlife", "coral", "sea urchin"})),
    "vehicle": (("vehicle", "aircraft_and_boat"), frozenset({"traffic jam", "parking lot", "harbor"})),
    "thing": (("object", "electronics", "toy_and_game", "accessory"), frozenset()),
    "food": (("food", "fruit", "vegetable", "drink"), frozenset({"food", "breakfast", "lunch", "dinner", "picnic"})),
    "plant": (("plant", "flower"), frozenset()),
    "clothing": (("clothing",), frozenset({"clothing"})),
    "scene": (
        ("nature", "urban"),
        frozenset({"outdoor", "nature", "sky", "clouds", "horizon", "sun", "moon", "stars", "milky way", "aurora"})
        | {"rainbow", "lightning", "underwater", "aerial view", "city lights", "night city", "traffic light"}
        | {"street sign", "stop sign", "street lamp", "fire hydrant", "bench", "mailbox", "trash can", "neon sign"},
    ),
    "room": (("indoor",), frozenset({"indoor"})),
    "building": (("building", "landmark_type"), frozenset({"door", "window", "roof", "wall", "column"})),
    "activity": (("activity",), frozenset()),
    "sport": (("sport",), frozenset({"sport"})),
    "event": (("event",), frozenset()),
    "weather": (("weather",), frozenset({"umbrella weather", "humid", "cold weather", "hot weather", "drought"})),
    "time": (("time_of_day",), frozenset()),
    "season": (("season",), frozenset()),
    "style": (("photo_style",), frozenset()),
    # Plain colours only: "warm colors car" is not a query.
    "colour": (
        ("color",),
        frozenset({"colorful", "dark", "bright", "orange color", "pastel colors", "neon colors"})
        | {"warm colors", "cool colors"},
    ),
    "mood": (("mood",), frozenset()),
}
# Words that join the vocabulary's into phrases (the vocabulary has no verbs for animals, and
# things rest on surfaces it files under several categories).
ANIMAL_ACTIONS = ("running", "sleeping", "swimming", "playing", "sitting", "jumping", "eating", "lying")
PREPOSITIONS = ("on the", "in the", "near the", "at the", "by the")
SURFACES = ("table", "wooden table", "plate", "desk", "kitchen counter", "tray", "cutting board", "bench")

Pools = dict[str, list[str]]


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


# Each pattern draws from the pools with the generator it is given; the mix mirrors what people
# search a photo library for: subjects doing something somewhere, objects with attributes, scenes.
PATTERNS: tuple[Callable[[Pools, random.Random], str], ...] = (
    lambda p, r: (
        f"{_a(r.choice(p['animal']))} {r.choice(ANIMAL_ACTIONS)} {r.choice(PREPOSITIONS)} {r.choice(p['scene'])}"
    ),
    lambda p, r: (
        f"{_a(r.choice(p['person']))} {r.choice(p['activity'])} {r.choice(PREPOSITIONS)} {r.choice(p['scene'])}"
    ),
    lambda p, r: f"{_a(r.choice(p['person']))} {r.choice(p['activity'])} in the {r.choice(p['room'])}",
    lambda p, r: f"{r.choice(p['colour'])} {r.choice(p['vehicle'])} parked at {r.choice(p['time'])}",
    lambda p, r: f"{r.choice(p['colour'])} {r.choice(p['vehicle'])} on the {r.choice(p['scene'])}",
    lambda p, r: f"{r.choice(p['scene'])} at {r.choice(p['time'])}",
    lambda p, r: f"{r.choice(p['building'])} in the {r.choice(p['weather'])}",
    lambda p, r: f"{r.choice(p['scene'])} in {r.choice(p['season'])}",
    lambda p, r: f"{r.choice(p['mood'])} {r.choice(p['room'])} with {_a(r.choice(p['plant']))}",
    lambda p, r: f"{r.choice(p['food'])} on {_a(r.choice(SURFACES))}",
    lambda p, r: f"{r.choice(p['style'])} photo of {_a(r.choice(p['animal']))}",
    lambda p, r: f"{r.choice(p['style'])} of {_a(r.choice(p['building']))} at {r.choice(p['time'])}",
    lambda p, r: f"{r.choice(p['person'])} wearing {_a(r.choice(p['colour']) + ' ' + r.choice(p['clothing']))}",
    lambda p, r: f"{r.choice(p['person'])} holding {_a(r.choice(p['thing']))}",
    lambda p, r: f"{r.choice(p['event'])} {r.choice(PREPOSITIONS)} {r.choice(p['scene'])}",
    lambda p, r: f"{r.choice(p['sport'])} at {r.choice(p['time'])}",
    lambda p, r: (
        f"{_a(r.choice(p['animal']))} and {_a(r.choice(p['person']))} {r.choice(PREPOSITIONS)} {r.choice(p['scene'])}"
    ),
    lambda p, r: f"{r.choice(p['thing'])} on {_a(r.choice(SURFACES))}",
)


def pools(vocab: Vocabulary) -> Pools:
    """Each slot's words: its categories' tag names, or every name where the vocabulary lacks them."""
    by_category: dict[str, list[str]] = {}
    for tag in vocab.tags:
        by_category.setdefault(tag.category, []).append(tag.name)
    every = [t.name for t in vocab.tags]
    return {
        slot: [n for c in cats for n in by_category.get(c, []) if n not in excluded] or every
        for slot, (cats, excluded) in SLOTS.items()
    }


def generate(vocab: Vocabulary, count: int = QUERIES, seed: int = SEED) -> list[str]:
    """``count`` unique phrases (fewer only if the vocabulary is too small), always the same ones."""
    rng = random.Random(seed)
    word_pools = pools(vocab)
    seen: dict[str, None] = {}  # insertion-ordered set
    for attempt in range(count * 20):  # bounded: a 5-tag vocabulary cannot give 1,000 unique phrases
        seen.setdefault(PATTERNS[attempt % len(PATTERNS)](word_pools, rng), None)
        if len(seen) == count:
            break
    return list(seen)


@cache
def default_queries() -> tuple[str, ...]:
    """The 1,000 queries from the default vocabulary (descriptions are not needed for them)."""
    return tuple(generate(load_vocabulary(DEFAULT_VOCABULARY, descriptions=False)))
