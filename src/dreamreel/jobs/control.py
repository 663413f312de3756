"""What jobs share for ControlNets: each net's control picture for a source picture, and the A1111
ControlNet extension's infotext fields (``ControlNet 0: "Module: canny, Model: ..., Weight: ..."``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.control import ControlRecipe

CANNY_LOW, CANNY_HIGH = 100, 200  # A1111's canny preprocessor defaults (Threshold A / B)
A1111_MODULES = {"canny": "canny", "tile": "tile_resample", "image": "none"}  # the extension's preprocessor names


def control_pictures(
    model: LoadedModel, recipe: ControlRecipe, source: Image.Image | None, width: int, height: int
) -> list[torch.Tensor] | None:
    """[1, 3, H, W] control pictures in [0, 1], one per ``model.controls`` (None without ControlNets):
    canny edges of ``source`` (or of the control image), the source itself (tile), or the control image."""
    from dreamreel.media.control import canny_edges
    from dreamreel.media.pictures import load_image, resize_image, to_unit_tensor

    if not model.controls:
        return None
    resize = str(getattr(recipe, "resize", "crop"))
    given = None if recipe.control_image is None else resize_image(load_image(recipe.control_image), width, height, resize)  # type: ignore[arg-type]
    base = resize_image(source, width, height, resize) if source is not None else given  # type: ignore[arg-type]
    pictures = []
    for spec in model.controls:
        if spec.kind == "image":
            picture = given
        elif spec.kind == "canny":
            picture = canny_edges(base, CANNY_LOW, CANNY_HIGH)
        else:
            picture = base
        pictures.append(to_unit_tensor([picture]))  # type: ignore[list-item]
    return pictures


def control_input(model: LoadedModel, recipe: ControlRecipe, pictures: list[torch.Tensor] | None, batch: int) -> Any:
    """The renderer's ControlInput for ``batch`` items that share ``pictures`` (None without ControlNets)."""
    from dreamreel.render.renderer import ControlInput

    if pictures is None:
        return None
    return ControlInput(
        images=[p.expand(batch, -1, -1, -1) for p in pictures],
        weights=[c.weight for c in model.controls],
        start=recipe.control_start,
        end=recipe.control_end,
    )


def frame_controls(model: LoadedModel, recipe: ControlRecipe, sources: list[Image.Image]) -> Any:
    """The ControlInput of a batch of frames whose control pictures come from each frame's own source
    picture (vid2vid), already fitted to the render size; None without ControlNets."""
    import torch

    from dreamreel.render.renderer import ControlInput

    if not model.controls:
        return None
    width, height = sources[0].size
    per_frame = [control_pictures(model, recipe, source, width, height) for source in sources]
    return ControlInput(
        images=[torch.cat([pictures[n] for pictures in per_frame]) for n in range(len(model.controls))],  # type: ignore[index]
        weights=[c.weight for c in model.controls],
        start=recipe.control_start,
        end=recipe.control_end,
    )


def picture_control(model: LoadedModel, recipe: ControlRecipe, picture: torch.Tensor | None) -> Any:
    """The ControlInput of one frame whose control pictures come from its img2img input ``picture``
    [1, 3, H, W] in [0, 1] (zoom: the warped, treated previous frame): canny edges of it (as 8-bit),
    the picture itself (tile), or the control image. None without ControlNets or without a picture."""
    from dreamreel.media.pictures import tensor_to_pil

    if not model.controls or picture is None:
        return None
    source = tensor_to_pil(picture)[0]
    height, width = picture.shape[-2:]
    pictures = control_pictures(model, recipe, source, int(width), int(height))
    assert pictures is not None
    tiles = [picture.cpu() if spec.kind == "tile" else p for spec, p in zip(model.controls, pictures, strict=True)]
    return control_input(model, recipe, tiles, 1)


def control_infotext(model: LoadedModel, recipe: ControlRecipe) -> dict[str, str]:
    """The A1111 ControlNet extension's fields, one per unit."""
    fields: dict[str, str] = {}
    for i, spec in enumerate(model.controls):
        parts = [
            f"Module: {A1111_MODULES[spec.kind]}",
            f"Model: {_model_name(spec)}",
            f"Weight: {spec.weight:g}",
            "Resize Mode: Crop and Resize",
        ]
        if spec.kind == "canny":
            parts += [f"Threshold A: {CANNY_LOW}", f"Threshold B: {CANNY_HIGH}"]
        parts += [
            f"Guidance Start: {recipe.control_start:g}",
            f"Guidance End: {recipe.control_end:g}",
            "Control Mode: Balanced",
        ]
        fields[f"ControlNet {i}"] = ", ".join(parts)  # quoted by format_parameters (it has commas)
    return fields


def _model_name(spec: Any) -> str:
    """A1111 writes a ControlNet as ``file_stem [first 8 hex digits of its sha256]``."""
    from pathlib import Path

    from dreamreel.models.loading import file_hash

    path = Path(spec.file).expanduser()
    return f"{spec.name} [{file_hash(path, 8)}]" if path.is_file() else spec.name
