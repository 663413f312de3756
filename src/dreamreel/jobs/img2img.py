"""Image and text to image: the guide's sketches brought to life, one picture per seed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from dreamreel.media.pictures import fit_size, load_image, pil_to_tensor, resize_image
from dreamreel.jobs.still_pictures import RenderedImage, render_seeds
from dreamreel.render.renderer import StepCallback

if TYPE_CHECKING:
    from PIL import Image

    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.base import Img2ImgRecipe


def target_size(
    model: LoadedModel, source: Image.Image, width: int | None, height: int | None
) -> tuple[int, int]:
    """Both sizes given: those. One given: the other follows the picture's aspect. None: the picture's
    aspect at about the model's native pixel count. Always multiples of 8."""
    if width and height:
        return width, height
    if width or height:
        src_w, src_h = source.size
        if width:
            return width, max(8, round(width * src_h / src_w / 8) * 8)
        assert height is not None
        return max(8, round(height * src_w / src_h / 8) * 8), height
    return fit_size(*source.size, side=model.native_size)


def img2img(
    model: LoadedModel,
    recipe: Img2ImgRecipe,
    on_step: StepCallback | None = None,
    source: Image.Image | None = None,
    positions: Sequence[int] | None = None,
) -> Iterator[RenderedImage]:
    """Yield one RenderedImage per seed (``recipe.batch`` seeds per UNet call); ``source`` overrides
    ``recipe.image`` (an already loaded picture); only the seeds at ``positions`` when given."""
    recipe.validate()
    picture = source if source is not None else load_image(recipe.image)
    width, height = target_size(model, picture, recipe.width, recipe.height)
    init = pil_to_tensor([resize_image(picture, width, height, recipe.resize)])  # type: ignore[arg-type]
    return render_seeds(
        model, recipe, width=width, height=height, on_step=on_step, init=init, strength=recipe.strength,
        positions=positions,
    )  # fmt: skip
