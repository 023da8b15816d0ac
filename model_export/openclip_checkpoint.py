"""An open_clip model as the export's ``Checkpoint``: its preprocessing, tokenizer and scoring as
data, its towers, and open_clip itself as the parity reference."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

from cliptag.imaging import Preprocessing
from cliptag.scoring import ScoreTransform
from cliptag.text import TextSettings

from model_export import openclip
from model_export.checkpoint import Checkpoint
from model_export.references import OpenClipReference

INTERPOLATIONS = {"bicubic": 3, "bilinear": 2}  # open_clip's names -> PIL filters
CLIP_EOT = 49407
SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")  # Gemma's ids 0-3, as SigLIP2's tokenizer has them


def load_openclip(source: str, work_dir: Path, seed: int = 0) -> Checkpoint:
    oc = openclip.import_open_clip()
    model, model_id, revision, cfg = openclip.create(source, seed)
    pcfg = oc.transform.PreprocessCfg(**model.visual.preprocess_cfg)
    preprocess = oc.transform.image_transform_v2(pcfg, is_train=False)
    kind = f"random:{source}" if source in openclip.RANDOM else "open_clip"
    prep = preprocessing_of(pcfg)
    if openclip.is_clip_architecture(model):
        tokenizer = oc.tokenizer.SimpleTokenizer(context_length=cfg["text_cfg"].get("context_length", 77))
        return Checkpoint(
            model=openclip.to_transformers(model, cfg),
            model_id=model_id,
            revision=revision,
            source=kind,
            preprocessing=prep,
            tokenizer_json=clip_tokenizer_json(tokenizer, work_dir),
            reference=OpenClipReference(model, preprocess, tokenizer, pad_as=CLIP_EOT),
        )
    context = int(cfg["text_cfg"]["context_length"])
    if source in openclip.RANDOM:  # Gemma's tokenizer is a download: an offline stand-in of its shape
        tokenizer_dir = stand_in_tokenizer(work_dir / "tokenizer", openclip.STAND_IN_VOCAB)
        tokenizer = oc.tokenizer.HFTokenizer(str(tokenizer_dir), context_length=context, clean="canonicalize")
    else:
        tokenizer = oc.get_tokenizer(model_id if model_id.startswith("hf-hub:") else model_id.partition("/")[0])
    backend = tokenizer.tokenizer
    scale, bias = float(model.logit_scale.detach().exp()), float(model.logit_bias.detach())
    return Checkpoint(
        model=model,
        model_id=model_id,
        revision=revision,
        source=kind,
        preprocessing=prep,
        tokenizer_json=runtime_tokenizer_json(backend, work_dir / "runtime-tokenizer.json"),
        reference=OpenClipReference(model, preprocess, tokenizer),
        text=TextSettings(context, int(backend.pad_token_id), int(backend.eos_token_id), "last"),
        score=ScoreTransform("sigmoid", scale, bias),
        family="siglip",
        towers=towers(model),
    )


def preprocessing_of(cfg: Any) -> Preprocessing:
    """open_clip's PreprocessCfg as the runtime's constants."""
    size = cfg.size if isinstance(cfg.size, int) else int(cfg.size[0])
    if cfg.resize_mode not in ("shortest", "squash"):
        raise SystemExit(f"open_clip resize_mode {cfg.resize_mode!r} is not supported (shortest, squash)")
    return Preprocessing(
        size=size,
        crop=size,
        mean=tuple(float(v) for v in cfg.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in cfg.std),  # type: ignore[arg-type]
        resample=INTERPOLATIONS[cfg.interpolation],
        resize=str(cfg.resize_mode),
        crop_offset="round",  # torchvision's CenterCrop: round((h - crop) / 2)
    )


def towers(model: Any) -> tuple[Any, Any]:
    import torch

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.model.encode_image(pixel_values)
            return out

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.model.encode_text(input_ids)
            return out

    return ImageTower().eval(), TextTower().eval()


def clip_tokenizer_json(tokenizer: Any, work_dir: Path) -> Path:
    """CLIP's BPE as a ``tokenizers`` file, from open_clip's own vocabulary and merges (offline):
    transformers' CLIPTokenizer builds the same tokenizer the Hub's CLIP checkpoints ship."""
    from tokenizers import normalizers
    from transformers import CLIPTokenizer

    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {names.get(token, token): i for token, i in tokenizer.encoder.items()}
    merges = sorted(tokenizer.bpe_ranks, key=tokenizer.bpe_ranks.__getitem__)
    out = work_dir / "clip-bpe"
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", "utf-8")
    tok = CLIPTokenizer.from_pretrained(str(out)).backend_tokenizer
    tok.normalizer = normalizers.Sequence([*uncurled_quotes(), tok.normalizer])  # open_clip cleans with ftfy
    tok.save(str(out / "tokenizer.json"))
    return out / "tokenizer.json"


def uncurled_quotes() -> list[Any]:
    """ftfy's un-curling of quotes (open_clip cleans every text with ftfy before tokenizing): the
    one of its repairs a prompt or a query meets that a ``tokenizers`` normaliser can do."""
    from tokenizers import normalizers

    return [normalizers.Replace(a, b) for a, b in (("‘", "'"), ("’", "'"), ("“", '"'), ("”", '"'))]


def canonicalize_normalizer() -> Any:
    """open_clip's ``canonicalize_text`` (big_vision's) as a ``tokenizers`` normaliser, so the
    runtime cleans a text as the model was trained: "_" to a space, ASCII punctuation dropped,
    lower case, whitespace collapsed. ftfy's repairs cannot be data; its un-curling of quotes is."""
    from tokenizers import Regex, normalizers

    return normalizers.Sequence(
        [
            *uncurled_quotes(),
            normalizers.Replace("_", " "),
            normalizers.Replace(Regex("[" + re.escape(string.punctuation) + "]"), ""),
            normalizers.Lowercase(),
            normalizers.Replace(Regex(r"\s+"), " "),
            normalizers.Strip(),
        ]
    )


def runtime_tokenizer_json(backend: Any, path: Path) -> Path:
    """The tokenizer transformers built (its post-processor adds the end token as configured),
    with the model's text cleaning in front of its own normaliser."""
    from tokenizers import normalizers

    tok = backend.backend_tokenizer
    own = tok.normalizer
    tok.normalizer = normalizers.Sequence([canonicalize_normalizer(), *([own] if own is not None else [])])
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    tok.normalizer = own  # the reference keeps cleaning in Python, as open_clip does
    return path


def stand_in_tokenizer(out: Path, size: int) -> Path:
    """A word-level tokenizer shaped like SigLIP2's Gemma one (pad 0, end of text 1, bos 2, unk 3;
    the end token appended), over the words of the default vocabulary and queries: random weights
    need no real vocabulary, and Gemma's 34 MB file is a download."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from model_export.queries import default_queries
    from model_export.tag_embeddings import all_prompts
    from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary

    clean = canonicalize_normalizer()
    texts = [*all_prompts(load_vocabulary(DEFAULT_VOCABULARY, quiet=True)), *default_queries()]
    counts = Counter(word for text in texts for word in clean.normalize_str(text).split())
    words = [w for w, _ in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))][: size - len(SPECIALS)]
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate([*SPECIALS, *words])}, unk_token="<unk>"))
    tok.normalizer = clean
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A <eos>", special_tokens=[("<eos>", 1)])
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"
    )
    fast.save_pretrained(str(out))
    return out
