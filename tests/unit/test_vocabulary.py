import pytest

from model_export.vocabulary_file import (
    DEFAULT_VOCABULARY,
    VocabularyError,
    load_vocabulary,
    parse_vocabulary,
)


def test_default_vocabulary_is_large_and_structured():
    vocab = load_vocabulary(DEFAULT_VOCABULARY)
    assert len(vocab.tags) >= 1000
    categories = {t.category for t in vocab.tags}
    for needed in ("animal", "food", "vehicle", "weather", "time_of_day", "activity", "event", "plant"):
        assert needed in categories
    dog = next(t for t in vocab.tags if t.name == "dog")
    assert "puppy" in dog.synonyms
    assert all("{}" in t for t in vocab.templates) and len(vocab.templates) > 1
    assert any(t.descriptions for t in vocab.tags)


def test_hash_is_stable_and_tracks_content():
    text = "tags:\n  animal:\n    - dog\n    - {name: cat, synonyms: [kitten]}\n"
    a, b = parse_vocabulary(text), parse_vocabulary(text)
    assert a.hash == b.hash and len(a.version) == 12
    assert parse_vocabulary(text.replace("kitten", "kitty")).hash != a.hash


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tags:\n  a:\n    - dog\n    - cat\n    - Dog\n",
            "line 5: duplicate tag or synonym 'Dog' (first on line 3)",
        ),
        (
            "tags:\n  a:\n    - dog\n    - {name: cat, synonyms: [dog]}\n",
            "line 4: duplicate tag or synonym 'dog'",
        ),
        ("tags:\n  a:\n    - dog\n    - {name: '  '}\n", "line 4: empty or missing tag name"),
        ("tags:\n  a:\n    - {name: dog, colour: brown}\n", "line 3: unknown field 'colour'"),
        (
            "tags:\n  a:\n    - {name: dog, threshold: 7}\n",
            "line 3: threshold of 'dog' must be a number between -1 and 1",
        ),
        (
            "templates: ['a photo']\ntags:\n  a: [dog]\n",
            "line 1: template 'a photo' must contain '{}' exactly once",
        ),
        ("tag:\n  a: [dog]\n", "unknown top-level field 'tag'"),
        ("tags: [dog]\n", "'tags' must map categories"),
        ("tags:\n  a:\n    - [dog, '']\n", "line 3: empty tag name"),
        ("tags: {a: [dog\n", "not valid YAML"),
    ],
)
def test_bad_files_give_clear_errors_with_lines(text, message):
    with pytest.raises(VocabularyError) as err:
        parse_vocabulary(text, source="mine.yaml")
    assert message in str(err.value)
    assert "mine.yaml" in str(err.value)


def test_every_default_tag_has_two_to_four_visual_descriptions():
    from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary

    vocab = load_vocabulary(DEFAULT_VOCABULARY)
    few = [t.name for t in vocab.tags if not 2 <= len(t.descriptions) <= 5]  # inline ones may add one
    assert len(vocab.tags) == 1620 and few == []
    assert all(d.strip() == d and d for t in vocab.tags for d in t.descriptions)
    bare = load_vocabulary(DEFAULT_VOCABULARY, descriptions=False)  # the ablation
    assert all(t.descriptions == () for t in bare.tags) and bare.version != vocab.version


def test_descriptions_of_unknown_tags_are_refused(tmp_path):
    from model_export.vocabulary_file import VocabularyError, load_vocabulary

    (tmp_path / "mine.yaml").write_text("tags:\n  animal: [dog]\n", "utf-8")
    (tmp_path / "mine.descriptions.yaml").write_text('dgo: ["a four-legged pet"]\n', "utf-8")
    with pytest.raises(VocabularyError, match="dgo"):
        load_vocabulary(tmp_path / "mine.yaml")


def test_the_export_embeds_the_descriptions(model_dir):
    """A described tag's embedding is not its name-only one: the descriptions enter the average."""
    from cliptag.bundle import ModelBundle
    from cliptag.text import TextEncoder
    from cliptag.vocabulary import TagSpec, Vocabulary

    from model_export.tag_embeddings import embed_vocabulary

    bundle = ModelBundle.open(model_dir)
    manifest = bundle.manifest
    text = TextEncoder(model_dir / manifest["text_encoder"]["file"], model_dir / manifest["tokenizer"]["file"])
    described = TagSpec("dog", descriptions=("a four-legged furry pet with a wagging tail",))
    rows = embed_vocabulary(text, Vocabulary((TagSpec("dog"), described)), progress=False)
    assert float(rows[0] @ rows[1]) < 0.9999
    shipped = {t.name: t for t in bundle.vocabulary.tags}
    assert len(shipped["dog"].descriptions) >= 2, "the exported vocabulary carries the descriptions"
