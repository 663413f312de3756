"""The CLIP BPE tokenizer, built offline from the vocabulary data shipped in the package.

CLIP's vocabulary is derived, not stored: the 256 byte symbols, the same with the end-of-word
marker ``</w>``, one entry per merge rule, then the two special tokens. Rebuilding it from the
merge list (MIT-licensed data from OpenAI's CLIP) gives the exact ids of the tokenizer that
ships with Stable Diffusion 1.x, with no network.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

CLIP_MAX_LENGTH = 77
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


@lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    data = resources.files("dreamreel") / "data" / "clip_bpe_merges.txt.gz"
    merges = gzip.decompress(data.read_bytes()).decode("utf-8").splitlines()
    symbols = _bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += [START_TOKEN, END_TOKEN]
    return {tok: i for i, tok in enumerate(tokens)}, merges


@lru_cache(maxsize=1)
def _tokenizer_files() -> tuple[str, str]:
    """vocab.json and merges.txt in a private temp folder: the one input form every transformers
    release (4.x slow/fast, 5.x) accepts."""
    folder = Path(tempfile.mkdtemp(prefix="dreamreel-clip-"))
    vocab, merges = clip_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return str(folder / "vocab.json"), str(folder / "merges.txt")


def build_clip_tokenizer(pad_token: str = END_TOKEN) -> CLIPTokenizer:
    """A fresh CLIPTokenizer identical in behaviour to SD 1.x's ``tokenizer/`` folder.

    SD 2.x and SDXL's second tokenizer pad with ``!`` (id 0) instead of the end token.
    """
    from transformers import CLIPTokenizer

    vocab_file, merges_file = _tokenizer_files()
    return CLIPTokenizer(vocab_file, merges_file, model_max_length=CLIP_MAX_LENGTH, pad_token=pad_token)
