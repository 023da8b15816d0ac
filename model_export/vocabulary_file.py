"""Parse the human-edited vocabulary YAML, reporting every problem with its line number.

Format (see ``vocabulary/default.yaml``)::

    templates:                 # prompt templates; "{}" is replaced by the tag or a synonym
      - "a photo of a {}."
    tags:
      animal:                  # parent category of the entries below
        - dog                  # a bare name
        - [horse, cow, sheep]  # several bare names on one line
        - {name: cat, synonyms: [kitten], threshold: 0.24, descriptions: ["a small furry pet"]}

Visual descriptions also come from the companion file ``X.descriptions.yaml`` beside ``X.yaml``;
a vocabulary without one gives its tags named like default tags the default's (so an edited copy
of ``default.yaml`` embeds like the default except where it was edited).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import yaml
from cliptag.vocabulary import TagSpec, Vocabulary

ENTRY_FIELDS = {"name", "synonyms", "threshold", "descriptions", "category"}
DEFAULT_VOCABULARY = Path(__file__).parent / "vocabulary" / "default.yaml"


class VocabularyError(ValueError):
    """One or more problems in a vocabulary file; the message lists each with its line."""


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar_list(node: yaml.Node, what: str, errors: list[str]) -> list[str]:
    if not isinstance(node, yaml.SequenceNode):
        errors.append(f"line {_line(node)}: {what} must be a list of strings")
        return []
    out = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or not str(item.value).strip():
            errors.append(f"line {_line(item)}: {what} entries must be non-empty strings")
            continue
        out.append(" ".join(str(item.value).split()))
    return out


def parse_vocabulary(text: str, source: str = "<vocabulary>") -> Vocabulary:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise VocabularyError(f"{source}: not valid YAML: {exc}") from exc
    errors: list[str] = []
    if not isinstance(root, yaml.MappingNode):
        raise VocabularyError(f"{source}: expected a mapping with 'templates' and 'tags'")
    sections = {k.value: (k, v) for k, v in root.value}
    for key, (knode, _) in sections.items():
        if key not in ("templates", "tags"):
            errors.append(f"line {_line(knode)}: unknown top-level field {key!r} (expected 'templates', 'tags')")
    templates = ["a photo of a {}."]
    if "templates" in sections:
        templates = _scalar_list(sections["templates"][1], "templates", errors)
        for t, node in zip(templates, sections["templates"][1].value, strict=False):
            if t.count("{}") != 1:
                errors.append(f"line {_line(node)}: template {t!r} must contain '{{}}' exactly once")
    if "tags" not in sections:
        raise VocabularyError(f"{source}: no 'tags' section" + ("".join(f"; {e}" for e in errors)))
    groups = sections["tags"][1]
    if not isinstance(groups, yaml.MappingNode):
        raise VocabularyError(f"{source}: line {_line(groups)}: 'tags' must map categories to lists of tags")

    tags: list[TagSpec] = []
    seen: dict[str, int] = {}  # every name and synonym, case-folded -> line that introduced it
    for cat_node, entries in groups.value:
        category = str(cat_node.value).strip()
        if not isinstance(entries, yaml.SequenceNode):
            errors.append(f"line {_line(entries)}: category {category!r} must hold a list of tags")
            continue
        # A list item may itself be a flow list of names: several tags on one line.
        flat = [e for item in entries.value for e in (item.value if isinstance(item, yaml.SequenceNode) else [item])]
        for entry in flat:
            spec = _parse_entry(entry, category, errors)
            if spec is None:
                continue
            clash = False
            for term in (spec.name, *spec.synonyms):
                key = term.casefold()
                if key in seen:
                    errors.append(f"line {_line(entry)}: duplicate tag or synonym {term!r} (first on line {seen[key]})")
                    clash = True
                else:
                    seen[key] = _line(entry)
            if not clash:
                tags.append(spec)
    if not tags and not errors:
        errors.append("no tags defined")
    if errors:
        raise VocabularyError(f"{source}: {len(errors)} problem(s):\n  " + "\n  ".join(errors))
    return Vocabulary(tags=tuple(tags), templates=tuple(templates))


def _parse_entry(entry: yaml.Node, category: str, errors: list[str]) -> TagSpec | None:
    line = _line(entry)
    if isinstance(entry, yaml.ScalarNode):
        name = " ".join(str(entry.value).split())
        if not name:
            errors.append(f"line {line}: empty tag name")
            return None
        return TagSpec(name=name, category=category)
    if not isinstance(entry, yaml.MappingNode):
        errors.append(f"line {line}: a tag is a name or a mapping with 'name'")
        return None
    fields = {k.value: v for k, v in entry.value}
    for key in fields:
        if key not in ENTRY_FIELDS:
            errors.append(f"line {line}: unknown field {key!r} (allowed: {', '.join(sorted(ENTRY_FIELDS))})")
    name_node = fields.get("name")
    name = " ".join(str(name_node.value).split()) if isinstance(name_node, yaml.ScalarNode) else ""
    if not name:
        errors.append(f"line {line}: empty or missing tag name")
        return None
    threshold = None
    if "threshold" in fields:
        try:
            threshold = float(fields["threshold"].value)
            if not -1.0 <= threshold <= 1.0:
                raise ValueError
        except (TypeError, ValueError):
            errors.append(f"line {line}: threshold of {name!r} must be a number between -1 and 1")
    synonyms = _scalar_list(fields["synonyms"], "synonyms", errors) if "synonyms" in fields else []
    descriptions = _scalar_list(fields["descriptions"], "descriptions", errors) if "descriptions" in fields else []
    own_category = fields.get("category")
    return TagSpec(
        name=name,
        category=str(own_category.value).strip() if isinstance(own_category, yaml.ScalarNode) else category,
        synonyms=tuple(synonyms),
        threshold=threshold,
        descriptions=tuple(descriptions),
    )


def descriptions_file(vocabulary: Path) -> Path:
    """The companion file of visual descriptions: ``default.yaml`` -> ``default.descriptions.yaml``."""
    return vocabulary.with_name(f"{vocabulary.stem}.descriptions.yaml")


DEFAULT_DESCRIPTIONS = descriptions_file(DEFAULT_VOCABULARY)


def load_vocabulary(
    path: str | Path, descriptions: bool = True, default_descriptions: bool = True, quiet: bool = False
) -> Vocabulary:
    """The vocabulary file with the descriptions of its companion file, if there is one; without
    one, tags named like a default tag take the default's (``default_descriptions=False``: not).
    ``descriptions=False`` leaves every description out (inline ones too), for the ablation.
    What was applied, and what was not, is said on stdout and stderr unless ``quiet``."""
    path = Path(path)
    vocab = parse_vocabulary(path.read_text("utf-8"), source=str(path))
    if not descriptions:
        return Vocabulary(tuple(replace(t, descriptions=()) for t in vocab.tags), vocab.templates)
    companion = descriptions_file(path)
    if companion.is_file():
        return with_descriptions(vocab, companion, quiet)
    defaults = read_descriptions(DEFAULT_DESCRIPTIONS)
    shared = [t for t in vocab.tags if defaults.get(t.name)]
    if default_descriptions:
        if shared and not quiet:
            print(
                f"[vocabulary] {len(shared):,} of {len(vocab.tags):,} tags take their descriptions from the default "
                f"vocabulary's companion ({DEFAULT_DESCRIPTIONS.name}): {path.name} has no {companion.name} "
                "(--no-default-descriptions: leave them out)",
                flush=True,
            )
        return _merged(vocab, defaults)
    missing = {t.name: [d for d in defaults[t.name] if d not in t.descriptions] for t in shared}
    lost = [name for name, texts in missing.items() if texts]  # these embed unlike the default's tags
    if not quiet and lost and 2 * len(shared) >= len(vocab.tags):  # a vocabulary derived from the default
        _warn_loudly(path, companion, len(vocab.tags), len(lost), sum(len(texts) for texts in missing.values()))
    return vocab


def read_descriptions(companion: Path) -> dict[str, list[str]]:
    """A companion file: tag name -> its descriptions (whitespace normalised)."""
    doc = yaml.safe_load(companion.read_text("utf-8")) or {}
    if not isinstance(doc, dict) or not all(
        isinstance(v, list) and all(isinstance(d, str) and d.strip() for d in v) for v in doc.values()
    ):
        raise VocabularyError(f"{companion}: expected a mapping of tag name -> list of descriptions")
    return {str(name): [" ".join(d.split()) for d in texts] for name, texts in doc.items()}


def with_descriptions(vocab: Vocabulary, companion: Path, quiet: bool = False) -> Vocabulary:
    """Each tag's inline descriptions followed by the companion file's (tag name -> list).
    Descriptions of names the vocabulary lacks (a tag removed or renamed) are left out, with a warning."""
    doc = read_descriptions(companion)
    unknown = sorted(set(doc) - set(vocab.names))
    if unknown and not quiet:
        listed = ", ".join(repr(name) for name in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        print(
            f"WARNING: {companion.name} describes {len(unknown):,} tag(s) the vocabulary does not have "
            f"(ignored): {listed}",
            file=sys.stderr,
            flush=True,
        )
    return _merged(vocab, doc)


def _merged(vocab: Vocabulary, doc: dict[str, list[str]]) -> Vocabulary:
    tags = tuple(
        replace(t, descriptions=tuple(dict.fromkeys([*t.descriptions, *doc.get(t.name, [])])))  # inline ones first
        for t in vocab.tags
    )
    return Vocabulary(tags, vocab.templates)


def _warn_loudly(path: Path, companion: Path, tags: int, lost: int, texts: int) -> None:
    """A vocabulary derived from the default whose tags lose the default's descriptions: each such
    tag embeds unlike the default's, so a re-vocabulary re-embeds it and a re-tag rewrites its scores."""
    bar = "!" * 100
    print(
        f"{bar}\nWARNING: {lost:,} of {tags:,} tags of {path.name} are default tags, but they get NONE of the "
        f"{texts:,} descriptions\n  the default's companion ({DEFAULT_DESCRIPTIONS.name}) gives them: there is no "
        f"{companion.name} beside it\n  and --no-default-descriptions leaves the default's out. They embed unlike "
        "the default vocabulary's tags:\n  each is embedded again and `cliptag retag` rewrites its scores across "
        f"the library.\n  Drop --no-default-descriptions, or copy {DEFAULT_DESCRIPTIONS.name} to {companion.name}."
        f"\n{bar}",
        file=sys.stderr,
        flush=True,
    )
