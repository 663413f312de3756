"""A1111 prompt syntax and long prompts: parsing, chunking, and embeddings against diffusers."""

from __future__ import annotations

import logging

import pytest
import torch

from dreamreel.render.prompts import CHUNK_TOKENS, parse_attention, tokenize_prompt
from dreamreel.render.renderer import Renderer


@pytest.mark.parametrize(
    ("text", "runs"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("a (cat:1.5) on a mat", [("a ", 1.0), ("cat", 1.5), (" on a mat", 1.0)]),
        ("(cat)", [("cat", 1.1)]),
        ("((cat))", [("cat", pytest.approx(1.21))]),
        ("[cat]", [("cat", pytest.approx(1 / 1.1))]),
        ("(a [b] c:2)", [("a ", 2.0), ("b", pytest.approx(2 / 1.1)), (" c", 2.0)]),
        (r"\(literal\) \[x\] a\\b", [(r"(literal) [x] a\b", 1.0)]),
        ("(open ended", [("open ended", pytest.approx(1.1))]),
        ("stray) and :1.5) text", [("stray) and :1.5) text", 1.0)]),
        ("time: noon", [("time: noon", 1.0)]),
        ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
        ("", [("", 1.0)]),
    ],
)
def test_parse_attention(text, runs):
    assert parse_attention(text) == runs


def _pipeline(model):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**model.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("pad_token", ["<|endoftext|>", "!"])
@pytest.mark.parametrize(
    ("prompt", "negative"),
    [("a funny cat covered in neon cloth", "blurry, low quality"), ("", ""), ("time: noon, a b c", "")],
)
def test_unweighted_short_prompts_equal_diffusers_encode_prompt(tiny_model, prompt, negative, pad_token):
    """Identical (torch.equal) to StableDiffusionPipeline.encode_prompt, with SD 1.x's padding and
    SD 2.x's ('!')."""
    from dataclasses import replace

    from dreamreel.models.tokenizer import build_clip_tokenizer

    model = replace(
        tiny_model, components=dict(tiny_model.components, tokenizer=build_clip_tokenizer(pad_token))
    )
    cond, uncond = _pipeline(model).encode_prompt(prompt, "cpu", 1, True, negative)
    ours = Renderer(model).encode(prompt, negative)
    assert torch.equal(ours.cond, cond)
    assert torch.equal(ours.uncond, uncond)


WORDS = ["cat", "dog", "owl", "fox", "bee", "ant", "bat", "cow", "pig", "hen"]
WORDS += ["red", "blue", "green", "gold", "dark", "light", "big", "small", "old", "new"]


def _long_prompt(tokens: int) -> str:
    """``tokens`` one-token words."""
    return " ".join(WORDS[i % len(WORDS)] for i in range(tokens))


def test_120_token_prompt_is_chunked_not_truncated(tiny_model, caplog):
    renderer = Renderer(tiny_model)
    prompt = _long_prompt(120)
    tokenized = tokenize_prompt(tiny_model.components["tokenizer"], prompt)
    assert [len(c.tokens) for c in tokenized.chunks] == [CHUNK_TOKENS, 120 - CHUNK_TOKENS]
    with caplog.at_level(logging.WARNING, logger="dreamreel"):
        conditioning = renderer.encode(prompt, "blurry")
    assert not caplog.records
    assert conditioning.cond.shape[1] == 154 and conditioning.uncond.shape[1] == 154
    # the last words matter: changing only the final word changes the second chunk
    changed = renderer.encode(prompt.rsplit(" ", 1)[0] + " zebra", "blurry")
    assert torch.equal(changed.cond[:, :77], conditioning.cond[:, :77])
    assert not torch.equal(changed.cond[:, 77:], conditioning.cond[:, 77:])
    # the negative is padded with the empty prompt's chunk, as A1111 pads
    assert torch.equal(conditioning.uncond[:, 77:], renderer.encode("").cond)


def test_long_negative_pads_the_prompt(tiny_model):
    conditioning = Renderer(tiny_model).encode("a cat", _long_prompt(120))
    assert conditioning.cond.shape == conditioning.uncond.shape == (1, 154, 32)


def test_mixed_lengths_render_in_one_batch_like_one_at_a_time(tiny_model):
    renderer = Renderer(tiny_model)
    short, long = renderer.encode("a cat"), renderer.encode(_long_prompt(120))
    settings = {"steps": 3, "guidance": 7.5, "width": 64, "height": 64}
    batch = renderer.generate([short, long], [1, 2], **settings)
    alone = [renderer.generate([c], [s], **settings)[0] for c, s in ((short, 1), (long, 2))]
    assert torch.allclose(batch, torch.stack(alone), atol=1e-5)
    assert short.lerp(long, 0.5).cond.shape[1] == 154


def test_comma_moves_the_phrase_to_the_next_chunk(tiny_model):
    tokenizer = tiny_model.components["tokenizer"]
    prompt = _long_prompt(70) + ", a very long phrase of words here"  # comma at token 70
    chunks = tokenize_prompt(tokenizer, prompt).chunks
    assert len(chunks[0].tokens) == 71  # ends with the comma
    assert tokenizer.decode(chunks[1].tokens) == "a very long phrase of words here"


def test_break_starts_a_new_chunk(tiny_model):
    chunks = tokenize_prompt(tiny_model.components["tokenizer"], "a cat BREAK a dog").chunks
    assert len(chunks) == 2


def test_weighted_word_changes_only_its_tokens(tiny_model):
    """`(cat:1.5)`: the same tokens as the plain prompt; each token's embedding is the plain one times
    one common factor (A1111's mean restoration), and the cat tokens' times 1.5 that factor."""
    tokenizer = tiny_model.components["tokenizer"]
    renderer = Renderer(tiny_model)
    plain = renderer.encode("a photo of a cat on a mat").cond[0]
    weighted = renderer.encode("a photo of a (cat:1.5) on a mat").cond[0]
    ids = tokenizer("a photo of a cat on a mat", padding="max_length", max_length=77).input_ids
    cat = [i for i, t in enumerate(ids) if t == tokenizer.convert_tokens_to_ids("cat</w>")]
    assert cat == [5]
    ratio = weighted / plain
    others = [i for i in range(77) if i not in cat]
    factor = ratio[others].mean()
    assert torch.allclose(ratio[others], factor.expand(len(others), ratio.shape[1]), rtol=1e-4)
    assert torch.allclose(ratio[cat], 1.5 * factor.expand(1, ratio.shape[1]), rtol=1e-4)
    assert factor != 1.0


def test_weighting_before_mean_restoration_touches_only_weighted_tokens(tiny_model):
    from dreamreel.render.prompts import apply_weights

    embeds = Renderer(tiny_model).encode("a photo of a cat").cond
    weights = torch.ones(77)
    weights[5] = 1.5
    scaled = apply_weights(embeds, weights, restore_mean=False)
    changed = (scaled != embeds).any(dim=-1)[0]
    assert changed.nonzero().flatten().tolist() == [5]


def test_absurdly_long_prompt_warns_with_the_dropped_words(tiny_model, caplog):
    prompt = _long_prompt(800) + " finalword"
    with caplog.at_level(logging.WARNING, logger="dreamreel"):
        conditioning = Renderer(tiny_model).encode(prompt)
    assert conditioning.cond.shape[1] == 77 * 10
    assert "finalword" in caplog.text and "dropped" in caplog.text


def test_a1111_lora_tags_are_not_fed_to_clip(tiny_model, caplog):
    renderer = Renderer(tiny_model)
    with caplog.at_level(logging.WARNING, logger="dreamreel"):
        tagged = renderer.encode("a cat <lora:neonStyle:0.8>, on a mat")
    assert "<lora:neonStyle:0.8>" in caplog.text and "--lora" in caplog.text
    assert torch.equal(tagged.cond, renderer.encode("a cat , on a mat").cond)
