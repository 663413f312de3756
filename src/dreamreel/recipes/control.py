"""The ControlNet settings a recipe may carry (txt2img, img2img): declared once as a mixin."""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamreel.errors import DreamreelError
from dreamreel.media.pictures import open_image_checked
from dreamreel.models.controlnet import parse_controlnet_spec, parse_controlnet_specs
from dreamreel.recipes.base import Recipe


@dataclass(frozen=True, kw_only=True)
class ControlRecipe(Recipe):
    """``controlnet``: ``KIND:FILE[:WEIGHT]`` each (canny: OpenCV edges of the source picture; tile: the
    source itself; image: ``control_image`` as it is). ``control_start``/``control_end``: the fractions
    of the steps run during which the ControlNets act (A1111's Guidance Start / End)."""

    controlnet: list[str] = field(default_factory=list)
    control_image: str | None = None  # the control picture (kind image; txt2img's source for canny/tile)
    control_start: float = 0.0
    control_end: float = 1.0

    def check(self) -> None:
        super().check()
        if not isinstance(self.controlnet, list) or not all(isinstance(x, str) for x in self.controlnet):
            raise DreamreelError("controlnet must be a list of 'KIND:FILE[:WEIGHT]' strings")
        specs = [parse_controlnet_spec(text) for text in self.controlnet]
        for name in ("control_start", "control_end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise DreamreelError(f"--{name.replace('_', '-')} must be from 0 to 1, got {value!r}")
        if self.control_start >= self.control_end:
            raise DreamreelError(
                f"--control-start ({self.control_start:g}) must be below --control-end ({self.control_end:g})"
            )
        if self.control_image is not None:
            open_image_checked(self.control_image)
        elif any(s.kind == "image" for s in specs) or (specs and not self.has_source_picture()):
            raise DreamreelError("--controlnet needs --control-image (the picture it follows)")

    def has_source_picture(self) -> bool:
        """Does the job have its own picture that canny and tile read (img2img's --image)?"""
        return False

    def check_model(self) -> None:
        super().check_model()
        parse_controlnet_specs(self.controlnet, allow_unsafe_pickle=self.allow_unsafe_pickle, model=self.model)
