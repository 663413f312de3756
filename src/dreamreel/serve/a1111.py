"""The subset of AUTOMATIC1111's HTTP API that clients use (Open WebUI, SillyTavern, painting-program
plugins, the ``webuiapi`` package), with A1111's request and response shapes (its
``modules/api/models.py``): unknown fields are ignored, wrong types get FastAPI's 422, as there.

Requests become ordinary txt2img/img2img recipes and go through the same queue and runner as the
page's jobs, so a picture made through the API equals ``dreamreel txt2img`` with the same settings;
``info`` carries each picture's A1111 infotext. A1111's seed rule holds: -1 draws one, and the
pictures of a batch take seed, seed+1, ...
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from dreamreel.errors import DreamreelError

router = APIRouter(prefix="/sdapi/v1")
# A1111's resize_mode numbers: just resize, crop and resize, resize and fill, latent upscale.
RESIZE_MODES = {0: "stretch", 1: "crop", 2: "fit", 3: "stretch"}
API_FOLDER = "api"  # API pictures land in OUT/api, in the gallery like the page's


class Txt2ImgRequest(BaseModel):
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1
    sampler_name: str | None = None
    sampler_index: str | None = None  # deprecated in A1111, still sent by clients
    scheduler: str | None = None
    batch_size: int = Field(default=1, ge=1)
    n_iter: int = Field(default=1, ge=1)
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    send_images: bool = True


class Img2ImgRequest(Txt2ImgRequest):
    init_images: list[str] = Field(default_factory=list)
    denoising_strength: float = 0.75
    resize_mode: int = 0


class PNGInfoRequest(BaseModel):
    image: str


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": "DreamreelError", "detail": message, "errors": message}, status_code=status)


def _scheduler(request: Txt2ImgRequest) -> str | None:
    from dreamreel.render.samplers import scheduler_from_infotext

    sampler = request.sampler_name or request.sampler_index
    schedule = request.scheduler if request.scheduler and request.scheduler.lower() != "automatic" else None
    return scheduler_from_infotext(sampler, schedule)


def decode_image(data: str, out: Path) -> Path:
    """An A1111 base64 picture (a data: URL prefix allowed) kept under OUT/uploads, checked as the CLI
    checks pictures."""
    from dreamreel.media.pictures import open_image_checked
    from dreamreel.runs.files import write_atomic

    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise DreamreelError(f"init image is not base64: {exc}") from exc
    path = out / "uploads" / f"{hashlib.sha256(raw).hexdigest()[:16]}.img"
    write_atomic(path, raw)
    open_image_checked(path)
    return path


def _run(request: Request, recipe: Any) -> Response:
    queue = request.app.state.queue
    job = queue.submit(recipe)
    job = queue.wait(job.id)
    if job.state != "done":
        return _error(job.error or f"the job was {job.state}", 500 if job.state == "failed" else 409)
    return JSONResponse(_response(queue.out, job, recipe))


def _response(out: Path, job: Any, recipe: Any) -> dict[str, Any]:
    from dreamreel.runs.metadata import PARAMETERS_KEY, parse_parameters

    images, infotexts = [], []
    for relative in job.outputs:
        path = out / relative
        images.append(base64.b64encode(path.read_bytes()).decode())
        from PIL import Image

        with Image.open(path) as picture:
            infotexts.append(str(picture.info.get(PARAMETERS_KEY, "")))
    first = parse_parameters(infotexts[0]) if infotexts else {}
    seeds = list(job.recipe["seeds"])
    info = {
        "prompt": recipe.prompt,
        "all_prompts": [recipe.prompt] * len(seeds),
        "negative_prompt": recipe.negative,
        "all_negative_prompts": [recipe.negative] * len(seeds),
        "seed": seeds[0],
        "all_seeds": seeds,
        "subseed": -1,
        "all_subseeds": [-1] * len(seeds),
        "subseed_strength": 0,
        "width": int(first.get("Size-1", recipe.width or 0)),
        "height": int(first.get("Size-2", recipe.height or 0)),
        "sampler_name": first.get("Sampler", ""),
        "cfg_scale": recipe.guidance,
        "steps": recipe.steps,
        "batch_size": recipe.batch,
        "restore_faces": False,
        "sd_model_name": first.get("Model", recipe.model),
        "sd_model_hash": first.get("Model hash"),
        "denoising_strength": getattr(recipe, "strength", None),
        "extra_generation_params": {},
        "index_of_first_image": 0,
        "infotexts": infotexts,
        "styles": [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
        "clip_skip": 1,
        "is_using_inpainting_conditioning": False,
        "version": first.get("Version", "dreamreel"),
    }
    return {"images": images, "parameters": {}, "info": json.dumps(info, ensure_ascii=False)}


def _seeds(body: Txt2ImgRequest) -> list[int]:
    from dreamreel.recipes.seeds import random_seeds

    first = random_seeds(1)[0] if body.seed == -1 else body.seed
    return [first + i for i in range(body.batch_size * body.n_iter)]


@router.post("/txt2img")
async def txt2img(body: Txt2ImgRequest, request: Request) -> Response:
    from dreamreel.jobs.txt2img import Txt2ImgRecipe

    settings = request.app.state.settings
    try:
        recipe = Txt2ImgRecipe(
            prompt=body.prompt, negative=body.negative_prompt, steps=body.steps, guidance=body.cfg_scale,
            width=body.width, height=body.height, scheduler=_scheduler(body), seeds=_seeds(body),
            batch=body.batch_size, model=settings.model, out=str(settings.out / API_FOLDER),
        )  # fmt: skip
        response = await asyncio.to_thread(_run, request, recipe)
    except DreamreelError as exc:
        return _error(str(exc))
    return _with_parameters(response, body)


@router.post("/img2img")
async def img2img(body: Img2ImgRequest, request: Request) -> Response:
    from dreamreel.jobs.img2img import Img2ImgRecipe

    settings = request.app.state.settings
    try:
        if not body.init_images:
            raise DreamreelError("img2img needs init_images")
        if body.resize_mode not in RESIZE_MODES:
            raise DreamreelError(f"resize_mode must be 0 to 3, got {body.resize_mode}")
        image = await asyncio.to_thread(decode_image, body.init_images[0], settings.out)
        recipe = Img2ImgRecipe(
            prompt=body.prompt, negative=body.negative_prompt, steps=body.steps, guidance=body.cfg_scale,
            width=body.width, height=body.height, scheduler=_scheduler(body), seeds=_seeds(body),
            batch=body.batch_size, model=settings.model, out=str(settings.out / API_FOLDER),
            image=str(image), strength=body.denoising_strength, resize=RESIZE_MODES[body.resize_mode],
        )  # fmt: skip
        response = await asyncio.to_thread(_run, request, recipe)
    except DreamreelError as exc:
        return _error(str(exc))
    return _with_parameters(response, body)


def _with_parameters(response: Response, body: BaseModel) -> Response:
    """A1111 echoes the request as ``parameters``; ``send_images`` false leaves the images out."""
    if not isinstance(response, JSONResponse) or response.status_code != 200:
        return response
    data = json.loads(bytes(response.body))
    data["parameters"] = body.model_dump(exclude={"init_images"})
    if not getattr(body, "send_images", True):
        data["images"] = []
    return JSONResponse(data)


@router.get("/progress")
def progress(request: Request, skip_current_image: bool = False) -> dict[str, Any]:
    queue = request.app.state.queue
    current = queue.current
    job = queue.get(current) if current else None
    preview = None
    if job is not None and job.preview and not skip_current_image:
        preview = job.preview.partition(",")[2]
    return {
        "progress": job.progress if job else 0.0,
        "eta_relative": job.eta or 0.0 if job else 0.0,
        "state": {
            "skipped": False,
            "interrupted": False,
            "job": job.id if job else "",
            "job_count": sum(j.state in ("queued", "running") for j in queue.jobs()),
            "job_timestamp": "",
            "job_no": 0,
            "sampling_step": job.step if job else 0,
            "sampling_steps": job.steps if job else 0,
        },
        "current_image": preview,
        "textinfo": None,
    }


@router.post("/interrupt")
def interrupt(request: Request) -> dict[str, Any]:
    request.app.state.queue.interrupt()
    return {}


@router.post("/skip")
def skip(request: Request) -> dict[str, Any]:
    request.app.state.queue.interrupt()
    return {}


def _model_item(request: Request) -> dict[str, Any]:
    queue = request.app.state.queue
    spec = request.app.state.settings.model
    short = queue.model.model_hash if queue.model is not None else None
    name = Path(spec).stem if spec != "tiny" else spec
    title = f"{name} [{short}]" if short else name
    return {"title": title, "model_name": name, "hash": short, "sha256": None, "filename": spec, "config": None}


@router.get("/sd-models")
def sd_models(request: Request) -> list[dict[str, Any]]:
    return [_model_item(request)]


@router.get("/samplers")
def samplers() -> list[dict[str, Any]]:
    from dreamreel.render.samplers import SCHEDULERS, split_scheduler_name

    names = dict.fromkeys(split_scheduler_name(name)[0] for name in SCHEDULERS)
    return [{"name": name, "aliases": [], "options": {}} for name in names]


@router.get("/schedulers")
def schedulers() -> list[dict[str, Any]]:
    from dreamreel.render.samplers import SCHEDULERS, split_scheduler_name

    labels = dict.fromkeys(["Automatic", *(split_scheduler_name(n)[1] or "Automatic" for n in SCHEDULERS)])
    return [{"name": label.lower().replace(" ", "_"), "label": label, "aliases": None, "default_rho": None,
             "need_inner_model": None} for label in labels]  # fmt: skip


@router.get("/options")
def get_options(request: Request) -> dict[str, Any]:
    item = _model_item(request)
    return {"sd_model_checkpoint": item["title"], "sd_checkpoint_hash": item["hash"], "samples_format": "png"}


@router.post("/options")
async def set_options(request: Request) -> Response:
    """One model per server: naming the loaded one is fine; another is refused (restart with it)."""
    try:
        body = await request.json()
    except ValueError:
        return _error("options must be a JSON object", 422)
    if not isinstance(body, dict):
        return _error("options must be a JSON object", 422)
    wanted = body.get("sd_model_checkpoint")
    item = _model_item(request)
    if wanted is not None and wanted not in (item["title"], item["model_name"], item["filename"]):
        return _error(f"this server runs one model ({item['title']}); restart it with --model to use {wanted!r}")
    return JSONResponse(None)


@router.post("/png-info")
def png_info(body: PNGInfoRequest) -> Response:
    from PIL import Image, UnidentifiedImageError

    from dreamreel.runs.metadata import PARAMETERS_KEY, parse_parameters

    data = body.image.partition(",")[2] if body.image.startswith("data:") else body.image
    try:
        picture = Image.open(io.BytesIO(base64.b64decode(data)))
    except (binascii.Error, ValueError, UnidentifiedImageError) as exc:
        return _error(f"not a picture: {exc}")
    info = picture.info
    text = str(info.get(PARAMETERS_KEY, ""))
    items = {str(k): v for k, v in info.items() if k != PARAMETERS_KEY and isinstance(v, (str, int, float))}
    return JSONResponse({"info": text, "items": items, "parameters": parse_parameters(text) if text else {}})
