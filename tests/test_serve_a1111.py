"""The A1111 API subset, spoken to by a real client (``webuiapi``) over a real uvicorn on 127.0.0.1,
and its shapes and errors through FastAPI's TestClient. One server and one tiny model per module."""

from __future__ import annotations

import base64
import io
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
webuiapi = pytest.importorskip("webuiapi")

from PIL import Image  # noqa: E402

from dreamreel.serve.app import Settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import running_server, wait_for_model  # noqa: E402

SETTINGS = {"prompt": "a lighthouse, stormy sea", "negative_prompt": "blurry", "seed": 42, "steps": 3,
            "cfg_scale": 6.5, "width": 32, "height": 48}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("a1111")
    with running_server(Settings(out=out, model="tiny", load=lambda: tiny_model)) as (url, app):
        wait_for_model(app)
        host, port = url.removeprefix("http://").split(":")
        yield webuiapi.WebUIApi(host=host, port=int(port), sampler="DPM++ 2M", scheduler="Karras"), url, app


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def cli_picture(run_cli, folder: Path, *args) -> Image.Image:
    folder = folder / "cli"
    code, _, err = run_cli([*args, "--model", "tiny", "--out", folder, "--quiet"])
    assert code == 0, err
    [path] = sorted(folder.glob("*.png"))
    return Image.open(path)


def test_webuiapi_txt2img_equals_the_cli(server, run_cli, cli_tiny, tmp_path):
    from dreamreel.runs.metadata import parse_parameters

    api, _, _ = server
    result = api.txt2img(**SETTINGS)
    [picture] = result.images
    expected = cli_picture(run_cli, tmp_path, "txt2img", SETTINGS["prompt"], "--negative", "blurry", "--seed", 42,
                           "--steps", 3, "--guidance", 6.5, "--width", 32, "--height", 48,
                           "--scheduler", "DPM++ 2M Karras")  # fmt: skip
    assert np.array_equal(pixels(picture), pixels(expected))
    info = result.info  # webuiapi parsed A1111's info JSON
    assert info["seed"] == 42 and info["all_seeds"] == [42] and info["width"] == 32 and info["height"] == 48
    parsed = parse_parameters(info["infotexts"][0])  # A1111's infotext rules
    assert parsed["Prompt"] == SETTINGS["prompt"] and parsed["Negative prompt"] == "blurry"
    assert parsed["Seed"] == "42" and parsed["Steps"] == "3" and parsed["CFG scale"] == "6.5"
    assert parsed["Sampler"] == "DPM++ 2M Karras" and parsed["Size"] == "32x48"
    assert info["infotexts"][0] == expected.info["parameters"]
    from PIL import PngImagePlugin
    from sd_parsers import ParserManager
    from sd_parsers.data import Generators

    carrier = PngImagePlugin.PngInfo()  # the infotext alone, as A1111 stores it, read by sd-parsers
    carrier.add_text("parameters", info["infotexts"][0])
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=carrier)
    other = ParserManager().parse(Image.open(buffer))
    assert other is not None and other.generator == Generators.AUTOMATIC1111
    [sampler] = other.samplers
    assert sampler.parameters["seed"] == "42" and sampler.parameters["steps"] == "3"
    assert sampler.parameters["cfg_scale"] == "6.5"
    assert api.png_info(picture).info == expected.info["parameters"]  # png-info reads it back


def test_webuiapi_img2img_equals_the_cli(server, run_cli, cli_tiny, tmp_path, sample_picture):
    api, _, _ = server
    source = Image.open(sample_picture)
    result = api.img2img(images=[source], prompt="a wolf", seed=9, steps=4, cfg_scale=7, width=32, height=32,
                         denoising_strength=0.5, resize_mode=1, sampler_name="Euler a", scheduler="automatic")  # fmt: skip
    [picture] = result.images
    expected = cli_picture(run_cli, tmp_path, "img2img", "a wolf", "--image", sample_picture, "--seed", 9,
                           "--steps", 4, "--guidance", 7, "--width", 32, "--height", 32, "--strength", 0.5,
                           "--resize", "crop", "--scheduler", "Euler a")  # fmt: skip
    assert np.array_equal(pixels(picture), pixels(expected))
    assert result.info["denoising_strength"] == 0.5


def test_batches_take_consecutive_seeds(server):
    api, _, _ = server
    result = api.txt2img(prompt="x", seed=100, steps=2, width=32, height=32, batch_size=2, n_iter=1)
    assert len(result.images) == 2 and result.info["all_seeds"] == [100, 101]


def test_models_samplers_options_progress(server):
    api, _, app = server
    [model] = api.get_sd_models()
    assert model["model_name"] == "tiny" and model["hash"] == app.state.queue.model.model_hash
    assert api.util_get_current_model() == model["title"]
    api.util_set_model("tiny")  # naming the loaded model is fine
    samplers = api.util_get_sampler_names()
    assert "Euler a" in samplers and "DPM++ 2M" in samplers
    progress = api.get_progress()
    assert progress["progress"] == 0.0 and progress["current_image"] is None
    assert api.interrupt() == {}


def test_shapes_and_errors_through_testclient(tiny_model, tmp_path):
    from fastapi.testclient import TestClient

    from dreamreel.serve.app import create_app

    app = create_app(Settings(out=tmp_path, model="tiny", load=lambda: tiny_model))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        wrong = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": "many"})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "steps"]  # as A1111
        ok = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 2, "width": 32, "height": 32,
                                                     "seed": 1, "alwayson_scripts": {}, "not_a_field": 1})  # fmt: skip
        assert ok.status_code == 200, ok.text  # unknown fields are ignored
        body = ok.json()
        assert set(body) == {"images", "parameters", "info"} and body["parameters"]["steps"] == 2
        Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).verify()
        bad_size = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "width": 33, "height": 32})
        assert bad_size.status_code == 400 and "width" in bad_size.json()["detail"]
        other = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "sdxl.safetensors"})
        assert other.status_code == 400 and "one model" in other.json()["detail"]
        not_picture = client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": ["aGVsbG8="]})
        assert not_picture.status_code == 400 and "not an image" in not_picture.json()["detail"]

        # a running job: /progress shows its step and a preview; /interrupt stops it
        job = client.post("/api/jobs", json={"job": "txt2img", "fields": {"prompt": "x", "seeds": "1-50",
                                                                         "steps": "20", "width": "32", "height": "32"}})  # fmt: skip
        deadline = time.monotonic() + 60
        while not (progress := client.get("/sdapi/v1/progress").json())["current_image"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert 0 < progress["progress"] < 1 and progress["state"]["sampling_steps"] > 0
        Image.open(io.BytesIO(base64.b64decode(progress["current_image"]))).verify()
        assert client.post("/sdapi/v1/interrupt").json() == {}
        assert app.state.queue.wait(job.json()["id"], timeout=60).state == "cancelled"
