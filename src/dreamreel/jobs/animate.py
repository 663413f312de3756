"""Text to a clip with an AnimateDiff motion adapter: every frame denoised together (render/animate.py).

Clips longer than ``context`` frames use diffusers' FreeNoise windows (``context`` frames every
``stride``). The unit of exactness is the clip: its frames meet in every step, so a resume re-runs the
clip's denoising (bit-identical on the same machine: the same arithmetic from the same CPU generators)
and decodes only the frames missing from the run folder; each frame is always decoded alone, so a
resumed frame is byte for byte the frame of an unbroken run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.jobs.protocol import Context, Frame, Job, Plan, Samples
from dreamreel.recipes.base import MAX_FRAMES, VideoRecipe
from dreamreel.recipes.seeds import check_seed, random_seeds

DEFAULT_CONTEXT = 16  # the clip length AnimateDiff's adapters are trained on
DEFAULT_STRIDE = 4  # FreeNoise's default distance between window starts


@dataclass(frozen=True, kw_only=True)
class AnimateRecipe(VideoRecipe):
    """A prompt and a motion adapter -> ``frames`` frames denoised as one clip."""

    job: ClassVar[str] = "animate"

    motion_adapter: str = ""  # FILE (.safetensors), diffusers FOLDER, or tiny
    frames: int = 16
    context: int = DEFAULT_CONTEXT
    stride: int = DEFAULT_STRIDE
    seed: int | None = None  # None: drawn at random and recorded
    fps: str | int | float | None = 8  # AnimateDiff's usual playing rate
    prompts: str = ""  # keyframed prompts "0:a cat, 16:a dog", blended linearly between keys (FreeNoise's way)
    video: str = ""  # a source clip: its first ``frames`` frames denoised together (video to video)
    strength: float = 0.75  # with ``video``: 0 keeps the source, 1 ignores it

    def check(self) -> None:
        super().check()
        if not self.motion_adapter:
            raise DreamreelError("animate needs --motion-adapter (FILE, FOLDER or tiny)")
        for name, value, high in (("frames", self.frames, MAX_FRAMES), ("context", self.context, 64)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise DreamreelError(f"--{name} must be a whole number from 1 to {high}, got {value!r}")
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or not 1 <= self.stride <= self.context:
            raise DreamreelError(f"--stride must be a whole number from 1 to --context ({self.context}), got {self.stride!r}")
        if self.seed is not None:
            check_seed(self.seed)
        if self.prompts:
            from dreamreel.keyframes import parse_prompts

            parse_prompts(self.prompts).frames(self.frames - 1)
        if self.video:
            from dreamreel.recipes.base import check_strength

            check_strength(self.strength, int(self.steps))

    def check_model(self) -> None:
        from dreamreel.models.loading import model_family
        from dreamreel.models.motion import check_motion_adapter

        super().check_model()
        if model_family(self.model) == "sdxl" and (self.frames > self.context or self.video or self.prompts):
            raise DreamreelError(
                "on SDXL, animate makes one window of text-to-clip: diffusers offers FreeNoise windows and "
                f"video to video for SD 1.x only (--frames {self.frames} > --context {self.context}, --video, --prompts)"
            )
        check_motion_adapter(self.motion_adapter, self.model)

    def resolved(self) -> AnimateRecipe:
        recipe = super().resolved()
        return recipe if recipe.seed is not None else recipe.replace(seed=random_seeds(1)[0])


def plan(recipe: AnimateRecipe) -> Plan:
    """A source clip must hold the frames asked for (the source opened once, no model)."""
    facts: dict[str, Any] = {}
    if recipe.video:
        from dreamreel.media.video import survey_video

        info, times = survey_video(recipe.video)
        if recipe.frames > len(times):
            raise DreamreelError(
                f"--frames {recipe.frames} is longer than the source {recipe.video!r} ({len(times)} frames)"
            )
        facts["source"] = info
    return Plan(count=recipe.frames, fps=recipe.frame_rate(), facts=facts)


def frames(context: Context[AnimateRecipe]) -> Iterator[Frame]:
    from dreamreel.media.pictures import tensor_to_pil
    from dreamreel.render.animate import ClipRenderer, ClipSettings

    model, recipe = context.model, context.recipe
    if not context.wanted:
        return
    adapter = model.components.get("motion_adapter")
    if adapter is None or model.motion_adapter != recipe.motion_adapter:  # a model handed in without it
        from dreamreel.models.motion import load_motion_adapter

        adapter = load_motion_adapter(recipe.motion_adapter, model.spec).to(model.device, model.dtype)
    clips = ClipRenderer(model, recipe.scheduler, adapter)
    init_frames, strength = None, None
    if recipe.video:
        from dreamreel.jobs.still_pictures import target_size
        from dreamreel.media.pictures import resize_image, to_unit_tensor
        from dreamreel.media.video import read_frames

        info = context.plan.facts["source"]
        width, height = target_size(model, (info.width, info.height), recipe.width, recipe.height)
        source = read_frames(recipe.video)
        fitted = [resize_image(next(source).image, width, height, "crop") for _ in range(recipe.frames)]
        init_frames, strength = to_unit_tensor(fitted), recipe.strength
    else:
        width, height = recipe.width or model.native_size, recipe.height or model.native_size
    settings = ClipSettings(
        frames=recipe.frames, steps=int(recipe.steps), guidance=float(recipe.guidance), width=width,
        height=height, context=recipe.context, stride=recipe.stride,
    )  # fmt: skip
    seed = int(recipe.seed)  # type: ignore[arg-type]
    conditioning: Any = clips.renderer.encode(recipe.prompt, recipe.negative)
    if recipe.prompts:
        conditioning = frame_conditionings(clips.renderer, recipe)
    latents = clips.denoise(
        conditioning, seed, settings, context.on_step, init_frames=init_frames, strength=strength
    )  # fmt: skip
    extra = {"AnimateDiff": animatediff_infotext(model, recipe, adapter)}
    for index, picture in clips.decode_frames(latents, context.wanted):
        from dreamreel.jobs.still_pictures import infotext

        parameters = infotext(
            model, clips.renderer, prompt=frame_prompt(recipe, index), negative=recipe.negative, steps=settings.steps,
            guidance=settings.guidance, seed=seed, width=width, height=height, strength=strength,
            extra={**extra, "Frame": index},
        )  # fmt: skip
        facts: dict[str, Any] = {"frame": index, "seed": seed, "model_hash": model.model_hash}
        yield Frame(index=index, seed=seed, image=tensor_to_pil(picture)[0], recipe=recipe, parameters=parameters, facts=facts)


def frame_prompt(recipe: AnimateRecipe, index: int) -> str:
    """The prompt frame ``index`` is keyed to (the last keyframe at or before it)."""
    if not recipe.prompts:
        return recipe.prompt
    from dreamreel.keyframes import parse_prompts

    return parse_prompts(recipe.prompts).at(index, recipe.frames - 1)[0]


def frame_conditionings(renderer: Any, recipe: AnimateRecipe) -> list[Any]:
    """Each frame's conditioning under ``prompts``: a keyframe's prompt at its key, a linear blend of the
    embeddings toward the next key between them, held after the last (what FreeNoise does with a dict)."""
    from dreamreel.keyframes import parse_prompts

    schedule = parse_prompts(recipe.prompts)
    result = []
    for index in range(recipe.frames):
        prompt, following, weight = schedule.at(index, recipe.frames - 1)
        cond = renderer.encode(prompt, recipe.negative)
        if weight > 0 and following != prompt:
            cond = cond.lerp(renderer.encode(following, recipe.negative), weight)
        result.append(cond)
    return result


def animatediff_infotext(model: Any, recipe: AnimateRecipe, adapter: Any) -> str:
    """The sd-webui-animatediff extension's ``AnimateDiff`` field (its own ``key: value`` list):
    its batch_size is the context window, overlap the frames two windows share (-1: one window)."""
    from pathlib import Path

    from dreamreel.models.loading import file_hash, weights_hash

    path = Path(recipe.motion_adapter).expanduser()
    windowed = recipe.frames > recipe.context
    fields = {
        "model": path.name if path.exists() else recipe.motion_adapter,
        "video_length": recipe.frames,
        "fps": recipe.frame_rate(),
        "loop_number": 0,
        "closed_loop": "N",
        "batch_size": min(recipe.context, recipe.frames),
        "stride": 1,
        "overlap": recipe.context - recipe.stride if windowed else -1,
        "interp": "Off",
        "interp_x": 10,
        "freeinit_enable": False,
        "mm_hash": (file_hash(path, 8) if path.is_file() else weights_hash(adapter)[:8]),
    }
    return ", ".join(f"{k}: {v}" for k, v in fields.items())


def example(samples: Samples) -> AnimateRecipe:
    return AnimateRecipe(prompt="a cat", model="tiny", motion_adapter="tiny", frames=6, context=4, stride=2,
                         steps=3, width=32, height=32, seed=5, output=str(samples.folder / "animate.mp4"))  # fmt: skip


JOB = Job(
    example=example, name="animate", recipe=AnimateRecipe, plan=plan, frames=frames,
    summary="Text to a clip: an AnimateDiff motion adapter denoises the frames together.",
)  # fmt: skip
