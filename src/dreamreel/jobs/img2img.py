"""Image and text to image: the guide's sketches brought to life, one picture per seed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.jobs.protocol import Context, Frame, Job, Plan, Samples
from dreamreel.jobs.still_pictures import render_seeds, target_size
from dreamreel.jobs.txt2img import Txt2ImgRecipe
from dreamreel.media.pictures import RESIZE_MODES, open_image_checked
from dreamreel.recipes.base import check_choice, check_strength


@dataclass(frozen=True, kw_only=True)
class Img2ImgRecipe(Txt2ImgRecipe):
    """Image and text to image (diffusers strength: 0 keeps the picture, 1 ignores it)."""

    job: ClassVar[str] = "img2img"

    image: str = ""
    strength: float = 0.75
    resize: str = "crop"

    def check(self) -> None:
        super().check()
        check_strength(self.strength, self.steps)
        check_choice(self, "resize", RESIZE_MODES)
        if not self.image:
            raise DreamreelError("img2img needs --image")
        open_image_checked(self.image)

    def has_source_picture(self) -> bool:
        return True

    def announcement(self) -> str:
        run = int(self.steps * self.strength)
        return f"strength {self.strength} of {self.steps} steps: {run} denoising steps run"


def plan(recipe: Img2ImgRecipe) -> Plan:
    return Plan(count=len(recipe.seeds))


def frames(context: Context[Img2ImgRecipe]) -> Iterator[Frame]:
    """The picture is loaded, fitted and VAE-encoded once for every seed."""
    from dreamreel.jobs.control import control_pictures
    from dreamreel.media.pictures import load_image, resize_image, to_unit_tensor
    from dreamreel.render.renderer import Renderer

    model, recipe = context.model, context.recipe
    picture = load_image(recipe.image)
    width, height = target_size(model, picture.size, recipe.width, recipe.height)
    fitted = resize_image(picture, width, height, recipe.resize)  # type: ignore[arg-type]
    return render_seeds(
        model, Renderer(model, recipe.scheduler), recipe, context.wanted, width=width, height=height,
        on_step=context.on_step, init=to_unit_tensor([fitted]), strength=recipe.strength,
        control=control_pictures(model, recipe, fitted, width, height),
    )  # fmt: skip


def example(samples: Samples) -> Img2ImgRecipe:
    return Img2ImgRecipe(prompt="a wolf", model="tiny", steps=5, strength=0.6, width=32, height=32,
                         image=str(samples.picture), seeds=[1, 2, 3], out=str(samples.folder / "img2img"))  # fmt: skip


JOB = Job(
    example=example, name="img2img", recipe=Img2ImgRecipe, plan=plan, frames=frames, stills=True,
    summary="Image and text to image: one PNG per seed.",
)  # fmt: skip
