"""The A1111 `parameters` text: written exactly as AUTOMATIC1111 writes it, read by A1111's own rule."""

from __future__ import annotations

import json

from dreamreel.runs.metadata import A1111_PARAM_RE, a1111_params, format_parameters, parse_parameters


def _params(**overrides):
    settings = dict(
        steps=50,
        sampler="Euler a",
        guidance=7.5,
        seed=265,
        width=512,
        height=512,
        model_hash="45dee52b01",
        model="v1-5-pruned",
    )
    settings.update(overrides)
    return a1111_params(**settings)


def test_format_matches_a1111_layout():
    text = format_parameters("a photograph of a young woman painting", "blurry", _params(strength=0.5))
    lines = text.split("\n")
    assert lines[0] == "a photograph of a young woman painting"
    assert lines[1] == "Negative prompt: blurry"
    assert lines[2].startswith(
        "Steps: 50, Sampler: Euler a, CFG scale: 7.5, Seed: 265, Size: 512x512, Model hash: 45dee52b01, "
        "Model: v1-5-pruned, Denoising strength: 0.5, Version: "
    )


def test_negative_line_omitted_when_empty():
    text = format_parameters("a cat", "", _params())
    assert "Negative prompt" not in text
    assert text.count("\n") == 1


def test_values_with_comma_colon_or_newline_are_json_quoted():
    text = format_parameters("x", "", _params(model="my, model: v2"))
    assert 'Model: "my, model: v2"' in text


def test_karras_split_into_schedule_type_like_a1111_1_10():
    text = format_parameters("x", "", _params(sampler="DPM++ 2M Karras"))
    assert "Sampler: DPM++ 2M, Schedule type: Karras, CFG scale" in text
    assert parse_parameters(text)["Sampler"] == "DPM++ 2M Karras"


def test_a1111_rule_parses_our_text():
    prompt = "a funny cat, covered in neon cloth\nsecond line of the prompt"
    text = format_parameters(prompt, "ugly, blurry", _params(model="odd, name", strength=0.25))
    # A1111 treats the last line as parameters only with >= 3 regex matches; quoted values are json.loads'ed.
    found = {k.strip(): v for k, v in A1111_PARAM_RE.findall(text.split("\n")[-1])}
    assert len(found) >= 3
    assert found["Seed"] == "265" and found["Size"] == "512x512"
    assert json.loads(found["Model"]) == "odd, name"
    parsed = parse_parameters(text)
    assert parsed["Prompt"] == prompt
    assert parsed["Negative prompt"] == "ugly, blurry"
    assert (parsed["Size-1"], parsed["Size-2"]) == ("512", "512")
    assert parsed["Denoising strength"] == "0.25"


def test_reads_a_real_a1111_infotext():
    # Shape of an AUTOMATIC1111 v1.10 infotext (REFERENCE.md).
    text = (
        "masterpiece, a castle\nNegative prompt: lowres\nSteps: 20, Sampler: Euler a, Schedule type: Karras, "
        "CFG scale: 7, Seed: 965400086, Size: 512x768, Model hash: 45dee52b, Model: name, Version: v1.10.0"
    )
    parsed = parse_parameters(text)
    assert parsed["Prompt"] == "masterpiece, a castle"
    assert parsed["Sampler"] == "Euler a Karras"
    assert parsed["Seed"] == "965400086" and parsed["Size-2"] == "768"
