"""The generation settings other tools (and we) store in their pictures, read into one shape.

:func:`read_picture_settings` reads a picture made by AUTOMATIC1111 (and its forks: PNG ``parameters``
chunk, JPEG/WebP EXIF UserComment, "stealth" PNGs with the text in the low bits of the alpha or RGB
channels), ComfyUI (the ``prompt`` graph JSON), InvokeAI 1.x-2.x (``Dream``, ``sd-metadata``) and 3.x+
(``invokeai_metadata``), NovelAI, Fooocus and dreamreel (our ``dreamreel`` recipe chunk).
:func:`settings_to_recipe_fields` turns those settings into dreamreel recipe fields, or says in one
line which setting of which tool has no dreamreel equivalent.

What comes from the sd-parsers library and what is written here, and why:

- InvokeAI (all three metadata variants, including the old ``Dream`` command line), NovelAI and Fooocus
  are parsed by sd-parsers' parsers (checked against the sample files in ``tests/fixtures/pictures``).
- Reading the raw metadata out of the file is ours: sd-parsers' JPEG/WebP and stealth extractors cache
  their last result under ``id(image)``, so a later picture that happens to get a freed picture's id is
  given the earlier picture's settings; its stealth reader knows only one of the four stealth variants
  (compressed, alpha) and walks the pixels one by one in Python. Ours reads all four with numpy, and
  decodes UserComment in either UTF-16 byte order.
- A1111 infotext goes through our parser (``metadata.parse_parameters``), which applies A1111's own
  rules (quoted values, ``Size-1``/``Size-2``, the 3-match rule) that the writer in this package follows.
- ComfyUI graphs are walked here: sd-parsers lists every sampler node with its prompts, but not which
  sampler made the saved picture, nor the latent it started from (size; empty latent or an encoded
  picture; another sampler's output in a multi-pass graph) - all of which decide whether the picture
  can be made again.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError
from dreamreel.runs.metadata import PARAMETERS_KEY, RECIPE_KEY, parse_parameters

if TYPE_CHECKING:
    from PIL import Image

A1111 = "AUTOMATIC1111"
COMFYUI = "ComfyUI"
INVOKEAI = "InvokeAI"
NOVELAI = "NovelAI"
FOOOCUS = "Fooocus"
DREAMREEL = "dreamreel"


@dataclass(frozen=True)
class PictureSettings:
    """What made a picture, as far as the picture says. ``sampler`` and ``schedule_type`` are the
    tool's own words (``"DPM++ 2M"``/``"Karras"``, ComfyUI's ``"dpmpp_2m"``/``"karras"``); ``strength``
    is set for img2img-like settings only; ``extra`` holds every other field the tool wrote."""

    tool: str
    prompt: str | None = None
    negative: str | None = None
    seed: int | None = None
    steps: int | None = None
    sampler: str | None = None
    schedule_type: str | None = None
    cfg: float | None = None
    width: int | None = None
    height: int | None = None
    strength: float | None = None
    model: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] | None = None  # dreamreel's own recipe, when the picture is ours
    unmappable: tuple[tuple[str, str], ...] = ()  # (setting, why) that no dreamreel recipe can hold

    def summary(self) -> dict[str, str]:
        """What ``dreamreel info`` shows, in order; settings the picture does not carry are left out."""
        rows: dict[str, Any] = {
            "Tool": self.tool,
            "Prompt": self.prompt,
            "Negative prompt": self.negative or None,
            "Seed": self.seed,
            "Steps": self.steps,
            "Sampler": self.sampler,
            "Schedule type": self.schedule_type,
            "CFG scale": self.cfg,
            "Size": f"{self.width}x{self.height}" if self.width and self.height else None,
            "Denoising strength": self.strength,
            "Model": self.model,
        }
        return {key: str(value) for key, value in rows.items() if value is not None and value != ""}


# -- reading ------------------------------------------------------------------------------------


def read_picture_settings(path: str | Path) -> PictureSettings:
    """The settings stored in a picture by any tool we know, or a one-line DreamreelError ending in
    "carries no generation settings" when it holds none."""
    from dreamreel.media.pictures import open_image_checked

    image = open_image_checked(path)
    settings = settings_of_image(image)
    if settings is None:
        raise DreamreelError(f"{str(path)!r} carries no generation settings")
    return settings


def picture_info_text(path: str | Path) -> str:
    """What ``dreamreel info`` prints for a picture: ours, the A1111 text then the whole recipe;
    another tool's, its settings one per line."""
    settings = read_picture_settings(path)
    if settings.recipe is not None:
        from dreamreel.runs.metadata import read_png_metadata

        parameters, recipe = read_png_metadata(path)
        head = f"{parameters}\n\n" if parameters else ""
        return head + json.dumps(recipe, indent=2, ensure_ascii=False)
    return "\n".join(f"{name}: {value}" for name, value in settings.summary().items())


def settings_of_image(image: Image.Image) -> PictureSettings | None:
    """The settings in an opened picture (see :func:`read_picture_settings`), or None."""
    info = {str(k): v for k, v in image.info.items()}
    if RECIPE_KEY in info:
        return _from_dreamreel(info)
    if isinstance(info.get(PARAMETERS_KEY), str):
        return _from_parameters_text(info[PARAMETERS_KEY], image)
    if isinstance(info.get("prompt"), str) and info["prompt"].lstrip().startswith("{"):
        return _from_comfyui(info, image)
    if any(key in info for key in ("invokeai_metadata", "sd-metadata", "Dream")):
        return _from_sd_parsers(INVOKEAI, info, image)
    if info.get("Software") == "NovelAI" and "Comment" in info:
        return _from_sd_parsers(NOVELAI, info, image)
    comment = exif_user_comment(image)
    if comment:
        return _from_parameters_text(comment, image)
    stealth = stealth_text(image)
    if stealth:
        if stealth.lstrip().startswith("{"):
            data = json.loads(stealth)
            if isinstance(data, dict) and "Comment" in data:  # NovelAI writes its info as JSON here
                return _from_sd_parsers(NOVELAI, {k: str(v) if k != "Comment" else v for k, v in data.items()},
                                        image)  # fmt: skip
        return _from_parameters_text(stealth, image)
    return None


def _from_parameters_text(text: str, image: Image.Image) -> PictureSettings | None:
    """A ``parameters`` text: A1111 infotext, or Fooocus' JSON (its own metadata scheme)."""
    if not text.strip():
        return None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and str(data.get("version", "")).startswith("Fooocus"):
            return _from_sd_parsers(FOOOCUS, {"parameters": text}, image)
    return _from_a1111(text, image)


def _from_a1111(text: str, image: Image.Image) -> PictureSettings:
    fields = parse_parameters(text)
    raw = dict(fields)
    version = str(fields.get("Version", ""))
    tool = FOOOCUS if version.startswith("Fooocus") else A1111
    if version.startswith("dreamreel"):
        tool = DREAMREEL
    width, height = _int(fields.get("Size-1")), _int(fields.get("Size-2"))
    # parse_parameters folds the schedule type into a dreamreel name; report A1111's own words
    sampler_line = re.search(r"(?:^|, )Sampler: ([^,\n]+)", text.strip().split("\n")[-1])
    sampler = sampler_line.group(1).strip() if sampler_line else fields.get("Sampler")
    known = {"Prompt", "Negative prompt", "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size",
             "Size-1", "Size-2", "Denoising strength", "Model"}  # fmt: skip
    unmappable = []
    for key in raw:
        if key.startswith("Hires") or key in ("Refiner", "Refiner switch at", "Mask blur", "Inpaint area"):
            unmappable.append((key, "dreamreel has no such pass"))
    if _float(raw.get("Clip skip")) not in (None, 1.0):
        unmappable.append(("Clip skip", "dreamreel always uses the text encoder's last layer"))
    if raw.get("Variation seed") and _float(raw.get("Variation seed strength")) not in (None, 0.0):
        unmappable.append(("Variation seed", "dreamreel does not mix seeds' noise into one picture"))
    return PictureSettings(
        tool=tool,
        prompt=fields.get("Prompt"),
        negative=fields.get("Negative prompt"),
        seed=_int(fields.get("Seed")),
        steps=_int(fields.get("Steps")),
        sampler=sampler,
        schedule_type=fields.get("Schedule type"),
        cfg=_float(fields.get("CFG scale")),
        width=width or image.width,
        height=height or image.height,
        strength=_float(fields.get("Denoising strength")),
        model=fields.get("Model"),
        extra={k: v for k, v in raw.items() if k not in known},
        unmappable=tuple(unmappable),
    )


def _from_dreamreel(info: Mapping[str, Any]) -> PictureSettings:
    try:
        payload = json.loads(info[RECIPE_KEY])
        recipe = payload["recipe"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DreamreelError(f"the dreamreel metadata is damaged: {exc}") from exc
    facts = payload.get("facts") or {}
    seeds = recipe.get("seeds") or ([recipe["seed"]] if recipe.get("seed") is not None else [])
    text = info.get(PARAMETERS_KEY)
    a1111 = parse_parameters(text) if isinstance(text, str) and text.strip() else {}
    scheduler = recipe.get("scheduler")
    return PictureSettings(
        tool=DREAMREEL,
        prompt=recipe.get("prompt"),
        negative=recipe.get("negative", ""),
        seed=_int(a1111.get("Seed")) if a1111.get("Seed") is not None else (seeds[0] if seeds else None),
        steps=_int(recipe.get("steps")),
        sampler=scheduler or a1111.get("Sampler"),
        schedule_type=None,
        cfg=_float(recipe.get("guidance")),
        width=_int(a1111.get("Size-1")) or recipe.get("width"),
        height=_int(a1111.get("Size-2")) or recipe.get("height"),
        strength=_float(recipe.get("strength")) if recipe.get("job") == "img2img" else None,
        model=recipe.get("model"),
        extra={"job": recipe.get("job"), **facts},
        recipe=recipe,
    )


# -- sd-parsers ----------------------------------------------------------------------------------


def _from_sd_parsers(tool: str, info: Mapping[str, Any], image: Image.Image) -> PictureSettings | None:
    from sd_parsers.exceptions import ParserError
    from sd_parsers.parsers import FooocusParser, InvokeAIParser, NovelAIParser

    parser_cls: Any = {INVOKEAI: InvokeAIParser, NOVELAI: NovelAIParser, FOOOCUS: FooocusParser}[tool]
    try:
        parsed = parser_cls().parse(dict(info))
    except (ParserError, KeyError, ValueError, TypeError) as exc:
        raise DreamreelError(f"the {tool} metadata of this picture is damaged: {exc}") from exc
    if not parsed.samplers:
        return None
    sampler = parsed.samplers[0]
    params = dict(sampler.parameters)
    metadata = {str(k): v for k, v in parsed.metadata.items()}
    width, height = _int(metadata.pop("width", None)), _int(metadata.pop("height", None))
    schedule_type = params.pop("scheduler", None)
    prompt = ", ".join(p.value for p in sampler.prompts) if sampler.prompts else None
    negative = ", ".join(p.value for p in sampler.negative_prompts) if sampler.negative_prompts else ""
    strength = None
    unmappable: list[tuple[str, str]] = []
    if tool == FOOOCUS:
        # The model saw the styled, expanded prompt, not the typed one.
        prompt = ", ".join(_strings(metadata.get("full_prompt"))) or prompt
        negative = ", ".join(_strings(metadata.get("full_negative_prompt"))) or negative
        width, height = _pair(metadata.get("resolution")) or (width, height)
        for key in ("sharpness", "adm_guidance"):
            if key in params or key in metadata:
                value = params.get(key, metadata.get(key))
                if key != "sharpness" or _float(value) not in (None, 0.0):
                    unmappable.append((key, "a Fooocus-only sampling change"))
    if tool == NOVELAI:
        params.pop("strength", None)  # NovelAI writes strength and noise for every picture
        request = str(metadata.get("request_type", ""))
        if "img2img" in request.lower():
            strength = _float(sampler.parameters.get("strength"))
        schedule_type = metadata.pop("noise_schedule", None)
    if tool == INVOKEAI:
        kind = str(metadata.get("generation_mode") or metadata.get("type") or "")
        if "img2img" in kind or "image_to_image" in kind:
            strength = _float(metadata.get("strength") or params.get("strength"))
        for key in ("ipAdapters", "controlnets", "t2iAdapters", "loras", "variations", "refiner_model",
                    "control_layers", "regions"):  # fmt: skip
            if _present(metadata.get(key)):
                unmappable.append((key, "changes the picture in a way no dreamreel recipe holds"))
        for key in ("hires_fix", "seamless"):
            if str(metadata.get(key, "")).lower() == "true":
                unmappable.append((key, "dreamreel has no such pass"))
        if _int(metadata.get("clip_skip")) not in (None, 0):
            unmappable.append(("clip_skip", "dreamreel always uses the text encoder's last layer"))
    steps = _int(params.pop("steps", None) if "steps" in params else metadata.pop("steps", None))
    extra = {**{k: v for k, v in params.items() if k not in ("seed", "cfg_scale")}, **metadata}
    return PictureSettings(
        tool=tool,
        prompt=prompt,
        negative=negative,
        seed=_int(params.get("seed")),
        steps=steps,
        sampler=sampler.name,
        schedule_type=str(schedule_type) if schedule_type else None,
        cfg=_float(params.get("cfg_scale")),
        width=width or image.width,
        height=height or image.height,
        strength=strength,
        model=sampler.model.name if sampler.model else None,
        extra=extra,
        unmappable=tuple(unmappable),
    )


# -- ComfyUI ---------------------------------------------------------------------------------------

_COMFY_OUTPUTS = ("SaveImage", "PreviewImage", "Image Save", "SaveImageWebsocket")


def _from_comfyui(info: Mapping[str, Any], image: Image.Image) -> PictureSettings | None:
    try:
        graph = json.loads(info["prompt"])
    except ValueError as exc:
        raise DreamreelError(f"the ComfyUI graph of this picture is damaged: {exc}") from exc
    if not isinstance(graph, dict):
        return None
    nodes = {str(k): v for k, v in graph.items() if isinstance(v, dict) and "inputs" in v}
    samplers = [k for k, v in nodes.items() if _is_sampler(v)]
    if not samplers:
        return None
    node_id = _final_sampler(nodes, samplers)
    node = nodes[node_id]
    inputs = node["inputs"]
    unmappable: list[tuple[str, str]] = []
    positive = _texts(nodes, inputs.get("positive"))
    negative = _texts(nodes, inputs.get("negative"))
    if len(positive) > 1:
        unmappable.append(("positive", f"{len(positive)} prompts combined by the graph"))
    if len(negative) > 1:
        unmappable.append(("negative", f"{len(negative)} prompts combined by the graph"))
    steps = _int(_value(nodes, inputs.get("steps")))
    denoise = _float(_value(nodes, inputs.get("denoise")))
    start, end = _int(_value(nodes, inputs.get("start_at_step"))), _int(_value(nodes, inputs.get("end_at_step")))
    if start or (end is not None and steps is not None and end < steps):
        unmappable.append(("start_at_step/end_at_step", "a part of the steps only"))
    width = height = None
    strength = None
    latent = _source(nodes, inputs.get("latent_image"))
    if latent is not None:
        kind = nodes[latent]["class_type"]
        if kind in ("EmptyLatentImage", "EmptySD3LatentImage"):
            width = _int(_value(nodes, nodes[latent]["inputs"].get("width")))
            height = _int(_value(nodes, nodes[latent]["inputs"].get("height")))
        elif kind.startswith("VAEEncode"):
            strength = denoise if denoise is not None else 1.0
            if kind != "VAEEncode":
                unmappable.append(("latent_image", f"{kind} (inpainting)"))
        else:
            unmappable.append(("latent_image", f"comes from {kind} (a multi-pass graph)"))
        if width is None and "width" in nodes[latent]["inputs"]:  # e.g. LatentUpscale: the saved size
            width = _int(_value(nodes, nodes[latent]["inputs"].get("width")))
            height = _int(_value(nodes, nodes[latent]["inputs"].get("height")))
    if strength is None and denoise not in (None, 1.0):
        unmappable.append(("denoise", f"{denoise} on an empty latent"))
    unmappable.extend(_graph_changes(nodes, inputs))
    checkpoint = next((nodes[n]["inputs"].get("ckpt_name") for n in _upstream(nodes, inputs.get("model"))
                       if "ckpt_name" in nodes[n]["inputs"]), None)  # fmt: skip
    seed = _int(_value(nodes, inputs.get("seed", inputs.get("noise_seed"))))
    known = {"seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative",
             "latent_image", "model", "denoise"}  # fmt: skip
    extra: dict[str, Any] = {f"{node['class_type']}.{k}": v for k, v in inputs.items() if k not in known}
    extra["sampler node"] = f"{node_id} ({node['class_type']})"
    if len(samplers) > 1:
        extra["sampler nodes"] = len(samplers)
    return PictureSettings(
        tool=COMFYUI,
        prompt=positive[0] if len(positive) == 1 else "\n".join(positive) or None,
        negative=negative[0] if len(negative) == 1 else "\n".join(negative),
        seed=seed,
        steps=steps,
        sampler=_comfy_sampler_name(_str(_value(nodes, inputs.get("sampler_name")))),
        schedule_type=_str(_value(nodes, inputs.get("scheduler"))),
        cfg=_float(_value(nodes, inputs.get("cfg"))),
        width=width or image.width,
        height=height or image.height,
        strength=strength,
        model=_str(checkpoint),
        extra=extra,
        unmappable=tuple(unmappable),
    )


_PLAIN_NODES = {"CLIPTextEncode", "CheckpointLoaderSimple", "CheckpointLoader", "PrimitiveNode", "VAELoader"}


def _comfy_sampler_name(name: str | None) -> str | None:
    """Early ComfyUI graphs name samplers by their k-diffusion function (``sample_dpmpp_2m``)."""
    return name.removeprefix("sample_") if name else name


def _graph_changes(nodes: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the graph does to the model or the prompts' conditioning beyond a plain render."""
    found: list[tuple[str, str]] = []
    for key in ("model", "positive", "negative"):
        for node_id in _upstream(nodes, inputs.get(key)):
            kind = nodes[node_id]["class_type"]
            if kind == "CLIPSetLastLayer":
                if _int(nodes[node_id]["inputs"].get("stop_at_clip_layer")) not in (None, -1):
                    found.append(("stop_at_clip_layer", "dreamreel always uses the text encoder's last layer"))
            elif kind not in _PLAIN_NODES and not kind.startswith("Primitive"):
                found.append((key, f"passes through a {kind} node"))
    return list(dict.fromkeys(found))


def _is_sampler(node: Mapping[str, Any]) -> bool:
    inputs = node.get("inputs", {})
    return "steps" in inputs and "cfg" in inputs and ("seed" in inputs or "noise_seed" in inputs)


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _source(nodes: Mapping[str, Any], value: Any) -> str | None:
    if _is_link(value) and str(value[0]) in nodes:
        return str(value[0])
    return None


def _upstream(nodes: Mapping[str, Any], value: Any) -> list[str]:
    """Every node a link leads back to, nearest first."""
    seen: list[str] = []
    queue = [value]
    while queue:
        source = _source(nodes, queue.pop(0))
        if source is None or source in seen:
            continue
        seen.append(source)
        queue.extend(v for v in nodes[source]["inputs"].values() if _is_link(v))
    return seen


def _final_sampler(nodes: Mapping[str, Any], samplers: list[str]) -> str:
    """The last pass: a sampler no other sampler starts from, preferring one that reaches a saved
    picture (a graph may save every pass)."""
    used = {u for s in samplers for u in _upstream(nodes, nodes[s]["inputs"].get("latent_image"))}
    last = [s for s in samplers if s not in used] or samplers
    saved = {u for n in nodes.values() if n["class_type"] in _COMFY_OUTPUTS
             for u in _upstream(nodes, n["inputs"].get("images"))}  # fmt: skip
    return next((s for s in last if s in saved), last[0])


def _texts(nodes: Mapping[str, Any], value: Any) -> list[str]:
    """The prompt texts wired into a conditioning input (through combines, area settings...)."""
    texts: list[str] = []
    for node_id in _upstream(nodes, value):
        inputs = nodes[node_id]["inputs"]
        for key in ("text", "text_g", "prompt"):
            if key in inputs:
                text = _value(nodes, inputs[key])
                if isinstance(text, str):
                    texts.append(text.strip())
                break
    # texts reached only through another text node's input (a primitive feeding CLIPTextEncode) are
    # already resolved by _value; keep each once, nearest first
    return list(dict.fromkeys(texts))


def _value(nodes: Mapping[str, Any], value: Any, depth: int = 0) -> Any:
    """A widget value, following a link to a primitive/constant node when the input is wired."""
    source = _source(nodes, value)
    if source is None or depth > 8:
        return value
    inputs = nodes[source]["inputs"]
    for key in ("value", "seed", "noise_seed", "text", "string", "int", "float", "Text"):
        if key in inputs:
            return _value(nodes, inputs[key], depth + 1)
    scalars = [v for v in inputs.values() if not _is_link(v)]
    return scalars[0] if len(scalars) == 1 else None


# -- raw metadata: EXIF UserComment, stealth bits ---------------------------------------------------


def exif_user_comment(image: Image.Image) -> str | None:
    """The EXIF UserComment (A1111's JPEG and WebP ``parameters``), decoded, or None."""
    try:
        exif = image.getexif()
        raw = exif.get_ifd(0x8769).get(0x9286)
        if raw is None:
            raw = exif.get(0x9286)
    except Exception:  # a damaged EXIF block is no settings, not a crash
        return None
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.strip("\x00") or None
    data = bytes(raw)
    prefix, body = data[:8], data[8:]
    if prefix.startswith(b"UNICODE"):
        return _utf16(body)
    if prefix.startswith(b"ASCII") or prefix == b"\x00" * 8:
        return body.decode("utf-8", errors="replace").strip("\x00") or None
    return data.decode("utf-8", errors="replace").strip("\x00") or None


def _utf16(body: bytes) -> str | None:
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16").strip("\x00") or None
    # A1111 (piexif) writes big-endian; some tools little-endian: ASCII text has its zero bytes first
    # in big-endian order.
    zeros_first = body[0:1] == b"\x00" if body else True
    text = body.decode("utf-16-be" if zeros_first else "utf-16-le", errors="replace")
    return text.strip("\x00") or None


_STEALTH = {
    b"stealth_pnginfo": ("alpha", False),
    b"stealth_pngcomp": ("alpha", True),
    b"stealth_rgbinfo": ("rgb", False),
    b"stealth_rgbcomp": ("rgb", True),
}
_SIGNATURE_BITS = 15 * 8


def stealth_text(image: Image.Image) -> str | None:
    """Text hidden by A1111's stealth-pnginfo extension in the low bits of a PNG's alpha channel (one
    bit a pixel) or RGB channels (three), pixels taken column by column: a signature, a 32-bit length
    in bits, then the text, gzip-compressed for the ``comp`` variants."""
    import numpy as np

    if image.format not in (None, "PNG", "WEBP") or image.mode not in ("RGB", "RGBA"):
        return None
    pixels = np.asarray(image)
    planes = []
    if image.mode == "RGBA":
        planes.append(("alpha", (pixels[:, :, 3] & 1).T.reshape(-1)))
    planes.append(("rgb", (pixels[:, :, :3] & 1).transpose(1, 0, 2).reshape(-1)))
    for mode, bits in planes:
        if bits.size < _SIGNATURE_BITS + 32:
            continue
        signature = np.packbits(bits[:_SIGNATURE_BITS]).tobytes()
        if signature not in _STEALTH or _STEALTH[signature][0] != mode:
            continue
        length = int.from_bytes(np.packbits(bits[_SIGNATURE_BITS : _SIGNATURE_BITS + 32]).tobytes(), "big")
        start = _SIGNATURE_BITS + 32
        if length <= 0 or start + length > bits.size:
            raise DreamreelError("the stealth settings in this picture are cut short")
        data = np.packbits(bits[start : start + length]).tobytes()
        try:
            if _STEALTH[signature][1]:
                data = gzip.decompress(data)
            return data.decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise DreamreelError(f"the stealth settings in this picture are damaged: {exc}") from exc
    return None


# -- to a dreamreel recipe -------------------------------------------------------------------------

# ComfyUI (and Fooocus, which uses its sampler names) -> A1111 labels; missing: no diffusers equivalent.
_COMFY_SAMPLERS = {
    "euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpm_2": "DPM2", "dpm_2_ancestral": "DPM2 a",
    "lms": "LMS", "dpmpp_2m": "DPM++ 2M", "dpmpp_sde": "DPM++ SDE", "dpmpp_sde_gpu": "DPM++ SDE",
    "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2m_sde_gpu": "DPM++ 2M SDE", "dpmpp_3m_sde": "DPM++ 3M SDE",
    "dpmpp_3m_sde_gpu": "DPM++ 3M SDE", "ddim": "DDIM", "uni_pc": "UniPC", "uni_pc_bh2": "UniPC", "lcm": "LCM",
    "dpmpp_2s_ancestral": "DPM++ 2S a", "dpm_fast": "DPM fast", "dpm_adaptive": "DPM adaptive",
}  # fmt: skip
_COMFY_SCHEDULES = {
    "normal": "Normal", "karras": "Karras", "exponential": "Exponential", "sgm_uniform": "SGM Uniform",
    "simple": "Simple", "beta": "Beta", "ddim_uniform": "DDIM", "kl_optimal": "KL Optimal",
    "linear_quadratic": None, "align_your_steps": "Align Your Steps",
}  # fmt: skip
# InvokeAI 3.x+ scheduler names and 1.x/2.x sampler names -> dreamreel names (by the diffusers scheduler
# InvokeAI runs for each); the rest have no equivalent here.
_INVOKEAI_SAMPLERS = {
    "ddim": "DDIM", "pndm": "PLMS", "plms": "PLMS", "lms": "LMS", "lms_k": "LMS Karras", "heun": "Heun",
    "heun_k": "Heun Karras", "euler": "Euler", "euler_k": "Euler Karras", "euler_a": "Euler a",
    "kdpm_2": "DPM2", "kdpm_2_k": "DPM2 Karras", "kdpm_2_a": "DPM2 a", "kdpm_2_a_k": "DPM2 a Karras",
    "dpmpp_2s": "DPM++ SDE", "dpmpp_2s_k": "DPM++ SDE Karras", "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_k": "DPM++ 2M Karras", "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2m_sde_k": "DPM++ 2M SDE Karras",
    "unipc": "UniPC", "lcm": "LCM",
    "k_lms": "LMS", "k_euler": "Euler", "k_euler_a": "Euler a", "k_heun": "Heun", "k_dpm_2": "DPM2",
    "k_dpm_2_a": "DPM2 a", "k_dpmpp_2": "DPM++ 2M",
}  # fmt: skip
_NOVELAI_SCHEDULES = {"native": None, "karras": "Karras", "exponential": "Exponential"}


def dreamreel_scheduler(settings: PictureSettings) -> str | None:
    """The dreamreel scheduler name a picture's sampler means, or a one-line DreamreelError naming the
    tool and the sampler when dreamreel has none."""
    from dreamreel.render.samplers import canonical_scheduler_name, scheduler_from_infotext

    sampler, schedule = settings.sampler, settings.schedule_type
    if not sampler:
        return None
    tool = settings.tool
    try:
        if tool == DREAMREEL:
            return canonical_scheduler_name(sampler)
        if tool in (COMFYUI, FOOOCUS) and (sampler in _COMFY_SAMPLERS or sampler.endswith("_gpu")):
            label = _COMFY_SAMPLERS.get(sampler)
            if label is None:
                raise DreamreelError(f"sampler {sampler!r} has no diffusers equivalent")
            if schedule and schedule not in _COMFY_SCHEDULES:
                raise DreamreelError(f"scheduler {schedule!r} is not one dreamreel knows")
            kind = _COMFY_SCHEDULES.get(schedule) if schedule else None
            if schedule and kind is None:
                raise DreamreelError(f"scheduler {schedule!r} has no diffusers equivalent")
            return scheduler_from_infotext(label, kind or "Normal")
        if tool == INVOKEAI and sampler in _INVOKEAI_SAMPLERS:
            return _INVOKEAI_SAMPLERS[sampler]
        if tool == NOVELAI:
            kind = _NOVELAI_SCHEDULES.get(schedule or "native", "?")
            if kind == "?":
                raise DreamreelError(f"noise schedule {schedule!r} has no diffusers equivalent")
            return scheduler_from_infotext(sampler, kind)
        if tool in (INVOKEAI, COMFYUI, FOOOCUS):
            raise DreamreelError(f"sampler {sampler!r} has no diffusers equivalent")
        return scheduler_from_infotext(sampler, schedule)
    except DreamreelError as exc:
        raise DreamreelError(f"{tool}: {exc} (dreamreel cannot render this picture's sampler)") from exc


def settings_to_recipe_fields(settings: PictureSettings) -> dict[str, Any]:
    """dreamreel recipe fields (``prompt, negative, steps, guidance, seeds, width, height, scheduler``,
    plus ``strength`` for img2img-like settings) for re-rendering a picture, or a one-line
    DreamreelError naming the tool and the setting that does not map. The model is not among them:
    a name from another tool cannot be resolved to a file, so the caller passes ``--model``."""
    tool = settings.tool
    if settings.unmappable:
        setting, why = settings.unmappable[0]
        raise DreamreelError(f"{tool} setting {setting!r} does not map onto a dreamreel recipe: {why}")
    needed = {"prompt": settings.prompt, "seed": settings.seed, "steps": settings.steps, "CFG scale": settings.cfg}
    missing = [name for name, value in needed.items() if value is None]
    if missing:
        raise DreamreelError(f"{tool} picture lacks the setting {missing[0]!r} needed to render it again")
    from dreamreel.recipes.seeds import MAX_SEED

    if not 0 <= int(settings.seed) <= MAX_SEED:  # type: ignore[arg-type]
        raise DreamreelError(f"{tool} seed {settings.seed} is beyond dreamreel's seeds (0 to {MAX_SEED})")
    width, height = settings.width, settings.height
    for name, size in (("width", width), ("height", height)):
        if size is None or size < 8 or size % 8:
            raise DreamreelError(f"{tool} setting {name} {size} is not a multiple of 8 that dreamreel can render")
    fields: dict[str, Any] = {
        "prompt": settings.prompt,
        "negative": settings.negative or "",
        "steps": int(settings.steps),  # type: ignore[arg-type]
        "guidance": float(settings.cfg),  # type: ignore[arg-type]
        "seeds": [int(settings.seed)],  # type: ignore[arg-type]
        "width": int(width),  # type: ignore[arg-type]
        "height": int(height),  # type: ignore[arg-type]
        "scheduler": dreamreel_scheduler(settings),
    }
    if settings.strength is not None:
        if not 0.0 <= settings.strength <= 1.0:
            raise DreamreelError(f"{tool} setting denoising strength {settings.strength} is outside [0, 1]")
        fields["strength"] = float(settings.strength)
    return fields


# -- small conversions -----------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            import ast

            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return [value]
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [str(v) for v in value if str(v).strip()]
    return []


def _present(value: Any) -> bool:
    """A metadata value that is there and not empty (lists may arrive as their Python text)."""
    if value is None:
        return False
    text = str(value).strip()
    return text not in ("", "[]", "{}", "None", "null", "0")


def _pair(value: Any) -> tuple[int, int] | None:
    numbers = re.findall(r"\d+", str(value)) if value is not None else []
    if len(numbers) == 2:
        return int(numbers[0]), int(numbers[1])
    return None
