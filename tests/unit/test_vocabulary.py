from pathlib import Path

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


def test_descriptions_of_tags_the_vocabulary_lacks_are_a_warning(tmp_path, capsys):
    """A companion copied with the vocabulary stays usable when tags are removed or renamed."""
    (tmp_path / "mine.yaml").write_text("tags:\n  animal: [dog, cat]\n", "utf-8")
    (tmp_path / "mine.descriptions.yaml").write_text(
        'dog: ["a four-legged pet"]\n' + "".join(f'gone{i}: ["removed"]\n' for i in range(7)), "utf-8"
    )
    vocab = load_vocabulary(tmp_path / "mine.yaml")
    assert [t.descriptions for t in vocab.tags] == [("a four-legged pet",), ()]  # its own companion only
    err = capsys.readouterr().err
    assert "WARNING: mine.descriptions.yaml describes 7 tag(s) the vocabulary does not have (ignored)" in err
    assert "'gone0', 'gone1', 'gone2', 'gone3', 'gone4', ..." in err


def _default_copy(tmp_path: Path, edit: tuple[str, str] | None = None) -> Path:
    text = DEFAULT_VOCABULARY.read_text("utf-8")
    if edit:
        assert text.count(edit[0]) == 1
        text = text.replace(*edit)
    (tmp_path / "my-tags.yaml").write_text(text, "utf-8")
    return tmp_path / "my-tags.yaml"


def test_a_copy_of_the_default_takes_its_descriptions_and_embeds_like_it(tmp_path, capsys):
    default = load_vocabulary(DEFAULT_VOCABULARY)
    assert capsys.readouterr() == ("", "")  # the default's own companion: nothing to say
    copy = load_vocabulary(_default_copy(tmp_path))
    assert copy.hash == default.hash, "an unedited copy is the same vocabulary: a re-tag changes nothing"
    out = capsys.readouterr().out
    assert "1,620 of 1,620 tags take their descriptions from the default vocabulary's companion" in out
    edited = load_vocabulary(_default_copy(tmp_path, ("{name: dog, synonyms: [puppy, canine]}", "{name: hound}")))
    assert "1,619 of 1,620 tags take their descriptions" in capsys.readouterr().out
    changed = [(a.name, b.name) for a, b in zip(default.tags, edited.tags, strict=True) if a != b]
    assert changed == [("dog", "hound")]  # the other 1,619 tags are exactly the default's


def test_a_companion_of_its_own_replaces_the_defaults(tmp_path, capsys):
    (tmp_path / "mine.yaml").write_text("tags:\n  animal: [dog, cat]\n", "utf-8")
    (tmp_path / "mine.descriptions.yaml").write_text('dog: ["a four-legged pet"]\n', "utf-8")
    assert [t.descriptions for t in load_vocabulary(tmp_path / "mine.yaml").tags] == [("a four-legged pet",), ()]
    assert "default" not in capsys.readouterr().out


def test_without_the_default_descriptions_a_copy_of_the_default_warns_loudly(tmp_path, capsys):
    path = _default_copy(tmp_path)
    vocab = load_vocabulary(path, default_descriptions=False)
    assert sum(len(t.descriptions) for t in vocab.tags) < 20  # a few inline ones only
    err = capsys.readouterr().err
    assert "!" * 100 in err
    assert "WARNING: 1,620 of 1,620 tags of my-tags.yaml are default tags, but they get NONE of the 3,295" in err
    assert "there is no my-tags.descriptions.yaml" in err
    # The ablation leaves every description out on purpose; a vocabulary of its own has nothing to lose.
    load_vocabulary(path, descriptions=False)
    (tmp_path / "mine.yaml").write_text("tags:\n  animal: [dog, okapi-ish, unicorn-cat]\n", "utf-8")
    load_vocabulary(tmp_path / "mine.yaml", default_descriptions=False)
    assert capsys.readouterr() == ("", "")


def test_the_flags_reach_the_vocabulary(monkeypatch, tmp_path):
    from model_export import cli, revocabulary

    seen = {}

    def fake(model_dir, vocabulary, progress, descriptions, default_descriptions):
        seen.update(descriptions=descriptions, default_descriptions=default_descriptions)
        return {"vocabulary": {"version": "v", "tags": 1}}

    monkeypatch.setattr(revocabulary, "revocabulary", fake)
    args = ["vocabulary", "--model-dir", str(tmp_path), "--vocabulary", "v.yaml", "--no-default-descriptions"]
    assert cli.main(args) == 0
    assert seen == {"descriptions": True, "default_descriptions": False}
    assert cli.build_parser().parse_args(["--no-default-descriptions"]).no_default_descriptions


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
