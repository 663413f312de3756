"""Prompts the AUTOMATIC1111 way: attention weights and prompts longer than CLIP's 77 tokens.

Syntax (A1111's): ``(word)`` multiplies attention by 1.1, ``((word))`` by 1.21, ``[word]`` divides
by 1.1, ``(word:1.3)`` sets 1.3 for the group, ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal,
unbalanced brackets close at the end, and ``BREAK`` starts a new 75-token chunk.

Long prompts: the tokens are cut into chunks of 75 (moving a chunk's tail after its last comma into
the next chunk when that comma is within 20 tokens of the end, as A1111 does), each chunk is framed
by start/end tokens and padded to 77, encoded on its own, and the chunks are concatenated along the
sequence axis. Weights scale each token's output embedding, then every chunk's mean is restored to
its unweighted value (A1111's default "emphasis").

A prompt without weights that fits 75 tokens yields exactly the token ids diffusers' tokenizer call
gives, hence exactly diffusers' ``encode_prompt`` embeddings.

This is a small, dependency-free parser on purpose (not compel): compel's syntax differs from A1111's
(``word++``, ``(word)1.3``; its A1111 compatibility mode is partial), it weights differently by
default (blending toward the empty prompt), and the exact A1111 semantics are what users bring.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger("dreamreel")

CHUNK_TOKENS = 75  # 77 minus the start and end tokens
COMMA_BACKTRACK = 20  # A1111's default comma_padding_backtrack
MAX_CHUNKS = 10  # 750 tokens; anything longer is cut, and the dropped words are shown
ROUND = 1.1
BREAK = "BREAK"

_TOKEN_RE = re.compile(
    r"""
    \\[()\[\]\\]        # escaped bracket or backslash
    | \\                # a lone backslash is text
    | \(                # open round: x1.1 unless a weight closes it
    | \[                # open square: /1.1
    | :\s*([+-]?[.\d]+)\s*\)   # ':1.3)' closes a round group with that weight
    | \)
    | \]
    | [^\\()\[\]:]+     # plain text
    | :                 # a colon that is not a weight is text
    """,
    re.VERBOSE,
)
_BREAK_RE = re.compile(r"\s*\bBREAK\b\s*")
# A1111 "extra networks" tags: <lora:name:0.8>, <lyco:...>, <hypernet:...>
EXTRA_NETWORK_RE = re.compile(r"<(lora|lyco|hypernet|embedding):[^>]*>", re.IGNORECASE)


def strip_extra_networks(text: str) -> tuple[str, list[str]]:
    """Remove A1111's ``<lora:name:weight>`` tags (not text for CLIP); LoRAs come in with --lora."""
    tags = [m.group(0) for m in EXTRA_NETWORK_RE.finditer(text)]
    return (EXTRA_NETWORK_RE.sub("", text) if tags else text), tags


def parse_attention(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) runs; ``BREAK`` appears as its own run with weight -1."""
    runs: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale_from(start: int, factor: float) -> None:
        for run in runs[start:]:
            run[1] *= factor

    for match in _TOKEN_RE.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\") and len(piece) == 2:
            runs.append([piece[1], 1.0])
        elif piece == "(":
            round_open.append(len(runs))
        elif piece == "[":
            square_open.append(len(runs))
        elif weight is not None and round_open:
            scale_from(round_open.pop(), _float(weight))
        elif piece == ")" and round_open:
            scale_from(round_open.pop(), ROUND)
        elif piece == "]" and square_open:
            scale_from(square_open.pop(), 1 / ROUND)
        else:
            for i, part in enumerate(_BREAK_RE.split(piece)):
                if i > 0:
                    runs.append([BREAK, -1.0])
                if part:
                    runs.append([part, 1.0])
    for start in round_open:
        scale_from(start, ROUND)
    for start in square_open:
        scale_from(start, 1 / ROUND)
    merged: list[tuple[str, float]] = []
    for piece, weight in runs:
        if merged and merged[-1][1] == weight and weight != -1.0:
            merged[-1] = (merged[-1][0] + piece, weight)
        else:
            merged.append((piece, weight))
    return merged or [("", 1.0)]


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0  # A1111 would crash on '(x:1.2.3)'; we keep the text unweighted


@dataclass
class Chunk:
    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


@dataclass
class TokenizedPrompt:
    chunks: list[Chunk]
    dropped: list[int]  # token ids cut beyond MAX_CHUNKS

    @property
    def weighted(self) -> bool:
        return any(w != 1.0 for chunk in self.chunks for w in chunk.weights)


def tokenize_prompt(tokenizer: Any, text: str) -> TokenizedPrompt:
    """A1111 chunking of a prompt's weighted tokens (ids without start/end tokens)."""
    chunks: list[Chunk] = []
    current = Chunk()
    last_comma = -1
    comma_id = tokenizer.convert_tokens_to_ids(",</w>")

    def close() -> None:
        nonlocal current, last_comma
        chunks.append(current)
        current, last_comma = Chunk(), -1

    for piece, weight in parse_attention(text):
        if weight == -1.0:  # BREAK
            close()
            continue
        for token in tokenizer(piece, add_special_tokens=False, truncation=False).input_ids:
            if token == comma_id:
                last_comma = len(current.tokens)
            elif (
                len(current.tokens) == CHUNK_TOKENS
                and last_comma != -1
                and (CHUNK_TOKENS - last_comma <= COMMA_BACKTRACK)
            ):
                # move the words after the last comma into the next chunk, keeping phrases whole
                cut = last_comma + 1
                tail = Chunk(current.tokens[cut:], current.weights[cut:])
                current = Chunk(current.tokens[:cut], current.weights[:cut])
                close()
                current = tail
            if len(current.tokens) == CHUNK_TOKENS:
                close()
            current.tokens.append(token)
            current.weights.append(weight)
    if current.tokens or not chunks:
        close()
    dropped = [t for chunk in chunks[MAX_CHUNKS:] for t in chunk.tokens]
    return TokenizedPrompt(chunks=chunks[:MAX_CHUNKS], dropped=dropped)


def chunk_ids(tokenizer: Any, chunk: Chunk) -> list[int]:
    """start + tokens + end, padded to 77 with the tokenizer's pad id: what ``padding="max_length"``
    gives for the same tokens (end token for SD 1.x, ``!`` for SD 2.x)."""
    ids = [tokenizer.bos_token_id, *chunk.tokens, tokenizer.eos_token_id]
    return ids + [tokenizer.pad_token_id] * (CHUNK_TOKENS + 2 - len(ids))


def chunk_weights(chunk: Chunk) -> list[float]:
    weights = [1.0, *chunk.weights, 1.0]
    return weights + [1.0] * (CHUNK_TOKENS + 2 - len(weights))


def apply_weights(embeds: torch.Tensor, weights: torch.Tensor, restore_mean: bool = True) -> torch.Tensor:
    """Scale each token's embedding [1, 77, D] by its weight [77]; then (A1111) rescale the whole chunk
    so its mean equals the unweighted mean."""
    import torch

    original_mean = embeds.float().mean()
    scaled = embeds.float() * weights.to(embeds.device, torch.float32).reshape(1, -1, 1)
    if restore_mean:
        scaled = scaled * (original_mean / scaled.mean())
    return scaled.to(embeds.dtype)


def encode_prompt(
    tokenizer: Any, text_encoder: Any, text: str, device: Any, dtype: Any
) -> tuple[torch.Tensor, TokenizedPrompt]:
    """[1, 77 * chunks, D] embeddings of a prompt, with its tokenization (for the caller's warnings)."""
    encoded = encode_prompt_layers(tokenizer, text_encoder, text, device, dtype)
    return encoded.embeds, encoded.tokenized


@dataclass
class PromptEncoding:
    embeds: torch.Tensor  # [1, 77 * chunks, D]
    pooled: torch.Tensor | None  # [1, P]: the projected pooled output of the first chunk (SDXL's encoder 2)
    tokenized: TokenizedPrompt


def encode_prompt_layers(
    tokenizer: Any,
    text_encoder: Any,
    text: str,
    device: Any,
    dtype: Any,
    *,
    penultimate: bool = False,
    tokenized: TokenizedPrompt | None = None,
) -> PromptEncoding:
    """A prompt's embeddings from one text encoder: its last hidden state (SD 1.x/2.x), or with
    ``penultimate`` the layer before it without the final norm, as SDXL reads both of its encoders.

    Weights scale each chunk's embeddings of this encoder and restore their mean (A1111 does it per
    encoder for SDXL); the pooled output, which only SDXL's second encoder's projection feeds to the
    UNet, is not weighted and comes from the first chunk, as in A1111. ``tokenized`` reuses a
    tokenization made with the same BPE (SDXL's two tokenizers differ only in their padding id).
    """
    import torch

    if tokenized is None:
        tokenized = tokenize_text(tokenizer, text)
    pieces = []
    pooled = None
    use_mask = getattr(text_encoder.config, "use_attention_mask", False)
    for chunk in tokenized.chunks:
        ids = torch.tensor([chunk_ids(tokenizer, chunk)], device=device)
        mask = None
        if use_mask:  # real tokens, start and end are attended; padding is not
            mask = torch.zeros_like(ids)
            mask[:, : len(chunk.tokens) + 2] = 1
        with torch.inference_mode():
            output = text_encoder(ids, attention_mask=mask, output_hidden_states=penultimate)
        embeds = output.hidden_states[-2] if penultimate else output[0]
        if pooled is None and output[0].ndim == 2:  # CLIPTextModelWithProjection: text_embeds first
            pooled = output[0]
        if any(w != 1.0 for w in chunk.weights):
            embeds = apply_weights(embeds, torch.tensor(chunk_weights(chunk)))
        pieces.append(embeds.to(dtype))
    return PromptEncoding(
        embeds=torch.cat(pieces, dim=1),
        pooled=None if pooled is None else pooled.to(dtype),
        tokenized=tokenized,
    )


def tokenize_text(tokenizer: Any, text: str) -> TokenizedPrompt:
    """The tokenization ``encode_prompt_layers`` makes of a prompt (extra-network tags warned and cut)."""
    text, tags = strip_extra_networks(text)
    if tags:
        log.warning("ignoring %s in the prompt: pass LoRA files with --lora FILE[:WEIGHT]", ", ".join(tags))
    return tokenize_prompt(tokenizer, text)


def pad_to_chunks(embeds: torch.Tensor, chunks: int, empty: torch.Tensor) -> torch.Tensor:
    """Extend [1, 77 * n, D] to ``chunks`` chunks with the empty prompt's chunk (as A1111 pads)."""
    import torch

    have = embeds.shape[1] // empty.shape[1]
    if have >= chunks:
        return embeds
    return torch.cat([embeds, *[empty.to(embeds)] * (chunks - have)], dim=1)


def same_length(tensors: Sequence[torch.Tensor], empty: torch.Tensor) -> list[torch.Tensor]:
    longest = max(t.shape[1] for t in tensors) // empty.shape[1]
    return [pad_to_chunks(t, longest, empty) for t in tensors]
