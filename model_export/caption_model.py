"""The caption model (BLIP) in the two graphs the caption function runs, built from transformers'
own modules and weights.

``ImageGraph``: pixels -> every decoder layer's cross-attention keys and values over the image
(computed once per photo). ``StepGraph``: the text decoder for new tokens, given the self-attention
keys and values of the tokens before them (the KV cache) and the image's; it returns the last
position's logits and the cache grown by the new tokens. Greedy decoding with them in numpy
(``cliptag.captioning``) gives the same tokens as ``BlipForConditionalGeneration.generate()``
(``model_export.caption_parity``).

Models: a Hugging Face BLIP captioning id (default ``Salesforce/blip-image-captioning-base``,
BSD-3-Clause), ``blip-base-random`` (its geometry: ViT-B/16 at 384 px, a 12-layer BERT-base
decoder with cross-attention, random weights, for the bench) and ``tiny-blip`` (for tests).
Offline, the random ones take a WordPiece vocabulary made from the CLIP tokenizer's words, so
their captions are words, not ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEFAULT_CAPTION_MODEL = "Salesforce/blip-image-captioning-base"
SPECIALS = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}  # BERT's ids
RANDOM_CAPTION_MODELS: dict[str, dict[str, Any]] = {
    # BLIP-base's geometry (its paper: ViT-B/16 at 384 px; the decoder is BERT-base's 12 layers x 12 heads).
    "blip-base-random": {
        "vision": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12},
        "text": {"vocab_size": 30524, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12},
        "heads": 12,
        "image_size": 384,
    },
    "tiny-blip": {
        "vision": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2},
        "text": {"vocab_size": 2048, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2},
        "heads": 2,
        "image_size": 96,
    },
}


@dataclass
class CaptionCheckpoint:
    model: Any  # transformers.BlipForConditionalGeneration, eval mode
    tokenizer: Any  # tokenizers.Tokenizer (WordPiece)
    key: str  # what the manifest names it by
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def load(name: str, seed: int = 0, geometry_dir: Path | None = None) -> CaptionCheckpoint:
    """A real checkpoint from the Hub (its processor's tokenizer and normalisation), or a random one."""
    from transformers import BlipConfig, BlipForConditionalGeneration

    if name in RANDOM_CAPTION_MODELS:
        spec = RANDOM_CAPTION_MODELS[name]
        text = {
            **spec["text"],
            "num_attention_heads": spec["heads"],
            "encoder_hidden_size": spec["vision"]["hidden_size"],
        }
        text["bos_token_id"] = int(text["vocab_size"]) - 2  # [DEC], as BLIP adds it (30522 in BLIP-base)
        vision = {**spec["vision"], "image_size": spec["image_size"], "patch_size": 16}
        torch.manual_seed(seed)
        config = BlipConfig(text_config=text, vision_config=vision)
        model = BlipForConditionalGeneration(config).eval()  # type: ignore[no-untyped-call]
        for p in model.parameters():  # BLIP's init leaves the vision tower near zero: give it real spread
            nn.init.normal_(p, std=0.02) if p.dim() > 1 else None
        tokenizer = synthetic_wordpiece(int(text["vocab_size"]), geometry_dir)
        clip_mean, clip_std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
        return CaptionCheckpoint(
            model, tokenizer, f"cliptag/{name}@seed{seed}", spec["image_size"], clip_mean, clip_std
        )
    from transformers import BlipProcessor

    processor = BlipProcessor.from_pretrained(name)
    model = BlipForConditionalGeneration.from_pretrained(name).eval()  # type: ignore[no-untyped-call]
    image = processor.image_processor
    size = int(image.size["height"])
    return CaptionCheckpoint(
        model, processor.tokenizer.backend_tokenizer, name, size, tuple(image.image_mean), tuple(image.image_std)
    )


def synthetic_wordpiece(vocab_size: int, geometry_dir: Path | None) -> Any:
    """A WordPiece tokenizer of ``vocab_size`` ids at BERT's special positions ([DEC] and [ENC]
    last, as BLIP adds them), its words taken from the CLIP tokenizer's vocabulary (offline)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    words: list[str] = []
    if geometry_dir is not None and (geometry_dir / "vocab.json").is_file():
        bpe = json.loads((geometry_dir / "vocab.json").read_text("utf-8"))
        words = [w[:-4] for w in bpe if w.endswith("</w>") and w[:-4].isalpha() and w[:-4].isascii()]
    vocab: dict[str, int] = {}
    fill = iter(dict.fromkeys(words))
    for i in range(vocab_size - 2):
        vocab[SPECIALS.get(i) or next(fill, None) or f"word{i}"] = i
    vocab["[DEC]"], vocab["[ENC]"] = vocab_size - 2, vocab_size - 1
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


class ImageGraph(nn.Module):
    """pixels [N, 3, S, S] -> cross [2L, N, H, P, D]: each decoder layer's cross-attention keys
    (even rows) and values (odd rows) over the vision tower's patch features."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.vision = model.vision_model
        self.layers = model.text_decoder.bert.encoder.layer
        self.heads = model.config.text_config.num_attention_heads

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        image = self.vision(pixel_values=pixel_values)[0]
        n, p, _ = image.shape
        out = []
        for layer in self.layers:
            cross = layer.crossattention.self
            for project in (cross.key, cross.value):
                out.append(project(image).view(n, p, self.heads, -1).transpose(1, 2))
        return torch.stack(out)


class StepGraph(nn.Module):
    """The decoder for T new tokens after P cached ones: (ids [N, T], past [2L, N, H, P, D], cross)
    -> (logits of the last new position [N, V], present [2L, N, H, P+T, D])."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        decoder = model.text_decoder
        self.embeddings = decoder.bert.embeddings
        self.layers = decoder.bert.encoder.layer
        self.head = decoder.cls
        self.heads = model.config.text_config.num_attention_heads

    def forward(
        self, input_ids: torch.Tensor, past: torch.Tensor, cross: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        t, p = input_ids.shape[1], past.shape[3]
        positions = (torch.arange(t) + p).unsqueeze(0)
        hidden = self.embeddings.LayerNorm(
            self.embeddings.word_embeddings(input_ids) + self.embeddings.position_embeddings(positions)
        )
        queries, keys = torch.arange(t) + p, torch.arange(p + t)
        mask = torch.where(keys[None, :] <= queries[:, None], 0.0, torch.finfo(torch.float32).min)
        present = []
        for i, layer in enumerate(self.layers):
            own = layer.attention.self
            k = torch.cat([past[2 * i], self._split(own.key(hidden))], dim=2)
            v = torch.cat([past[2 * i + 1], self._split(own.value(hidden))], dim=2)
            present += [k, v]
            hidden = layer.attention.output(self._attend(own.query(hidden), k, v, mask), hidden)
            other = layer.crossattention.self
            hidden = layer.crossattention.output(
                self._attend(other.query(hidden), cross[2 * i], cross[2 * i + 1]), hidden
            )
            hidden = layer.output(layer.intermediate(hidden), hidden)
        return self.head(hidden[:, -1]), torch.stack(present)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        return x.view(n, t, self.heads, -1).transpose(1, 2)

    def _attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        q = self._split(q)
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        if mask is not None:
            scores = scores + mask
        context = scores.softmax(-1) @ v
        n, _, t, _ = context.shape
        out: torch.Tensor = context.transpose(1, 2).reshape(n, t, -1)
        return out
