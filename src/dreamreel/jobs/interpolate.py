"""Smooth videos: walk from keyframe to keyframe through the starting noise and the text embeddings.

The experiment that failed for the guide ("tiny changes of the latents") works when the changes are
made where Stable Diffusion is smooth: between two seeds we slerp their starting noise (spherical
interpolation keeps the noise's length, so every in-between is still a plausible starting noise; a
plain lerp shrinks it and gives washed-out frames), and between two prompts we lerp their embeddings.
Each frame is then an ordinary txt2img from that noise and that conditioning, so the frame at a
keyframe *is* plain txt2img of its prompt and seed, exactly, and neighbours differ only a little.

Frames are independent of each other (no feedback): a resume renders from the batch holding the
next frame (render.fixed_batches), so every frame comes out of the same batch as in an unbroken run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.jobs.protocol import Context, Frame, Job, Plan, Samples
from dreamreel.recipes.base import VideoRecipe, check_batch, check_prompt
from dreamreel.recipes.seeds import check_seed, random_seeds

if TYPE_CHECKING:
    import torch

    from dreamreel.render.renderer import Renderer

EASINGS = ("linear", "smooth")
MAX_BETWEEN = 10_000


def ease(t: float, easing: str) -> float:
    """linear: constant speed. smooth (smoothstep, ease-in-out): slow at each keyframe, so the film
    rests on the keyframes' pictures and glides between them."""
    if easing == "linear":
        return t
    if easing in ("smooth", "ease-in-out"):
        return t * t * (3 - 2 * t)
    raise DreamreelError(f"unknown --easing {easing!r}; choose one of {', '.join(EASINGS)}")


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two noise tensors (t = 0 gives ``a`` itself, t = 1 ``b``)."""
    import torch

    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    a64, b64 = a.double().flatten(), b.double().flatten()
    cos = torch.dot(a64, b64) / (a64.norm() * b64.norm())
    theta = torch.arccos(cos.clamp(-1, 1))
    if float(theta.sin().abs()) < 1e-6:  # (anti)parallel: the arc is a line
        mixed = a64 + (b64 - a64) * t
    else:
        mixed = (torch.sin((1 - t) * theta) * a64 + torch.sin(t * theta) * b64) / theta.sin()
    return mixed.view(a.shape).to(a.dtype)


@dataclass(frozen=True, kw_only=True)
class InterpolateRecipe(VideoRecipe):
    """Keyframes are (prompt, seed) pairs; a list of length 1 is used for every keyframe."""

    job: ClassVar[str] = "interpolate"

    prompt: str = ""
    prompts: list[str] = field(default_factory=list)  # empty: [prompt]
    seeds: list[int] = field(default_factory=list)  # empty: random seeds, drawn and recorded
    frames_between: int = 24
    easing: str = "smooth"
    loop: bool = False  # go back to the first keyframe at the end (a seamless loop)
    batch: int = 1  # frames per UNet call (same pictures, faster on a GPU)

    def check(self) -> None:
        prompts = self.keyframe_prompts()
        if not prompts:
            raise DreamreelError("interpolate needs at least one --prompt")
        for text in prompts:
            check_prompt("prompt", text)
        count = max(len(prompts), len(self.seeds) or (1 if len(prompts) > 1 else 2))
        if count < 2:
            raise DreamreelError("interpolate needs two keyframes: give two or more --prompt or --seed")
        for name, items in (("--prompt", prompts), ("--seed", self.seeds)):
            if items and len(items) not in (1, count):
                raise DreamreelError(
                    f"{len(items)} {name} values for {count} keyframes: give one (used for all) or {count}"
                )
        for seed in self.seeds:
            check_seed(seed)
        if not isinstance(self.frames_between, int) or not 0 <= self.frames_between <= MAX_BETWEEN:
            raise DreamreelError(f"--frames-between must be a whole number from 0 to {MAX_BETWEEN}")
        ease(0.5, self.easing)
        check_batch(self.batch)
        super().check()

    def resolved(self) -> InterpolateRecipe:
        recipe = super().resolved()
        prompts = recipe.keyframe_prompts()
        seeds = recipe.seeds or random_seeds(1 if len(prompts) > 1 else 2)
        return recipe.replace(prompts=prompts, prompt=recipe.prompt or prompts[0], seeds=seeds)

    def keyframe_prompts(self) -> list[str]:
        return self.prompts or ([self.prompt] if self.prompt else [])

    def keyframe_count(self) -> int:
        return max(len(self.prompts), len(self.seeds))

    def keyframe(self, k: int) -> tuple[str, int]:
        k %= self.keyframe_count()
        prompt = self.prompts[k] if len(self.prompts) > 1 else self.prompts[0]
        seed = self.seeds[k] if len(self.seeds) > 1 else self.seeds[0]
        return prompt, seed

    @property
    def total_frames(self) -> int:
        count = self.keyframe_count()
        segments = count if self.loop else count - 1
        return segments * (self.frames_between + 1) + (0 if self.loop else 1)

    def position(self, index: int) -> tuple[int, float]:
        """Frame ``index`` -> (keyframe it starts from, eased fraction of the way to the next)."""
        k, j = divmod(index, self.frames_between + 1)
        return k, ease(j / (self.frames_between + 1), self.easing)


def plan(recipe: InterpolateRecipe) -> Plan:
    return Plan(count=recipe.total_frames, fps=recipe.frame_rate())


def frames(context: Context[InterpolateRecipe]) -> Iterator[Frame]:
    """The wanted frames; each is txt2img from interpolated noise and conditioning."""
    import torch

    from dreamreel.render.renderer import Renderer, fixed_batches

    model, recipe = context.model, context.recipe
    renderer = Renderer(model, recipe.scheduler)
    width = recipe.width or model.native_size
    height = recipe.height or model.native_size
    noises: dict[int, torch.Tensor] = {}

    def noise_of(seed: int) -> torch.Tensor:
        if seed not in noises:
            noises[seed] = renderer.initial_noise(seed, width, height)
        return noises[seed]

    keep = set(context.wanted)
    for chunk in fixed_batches(sorted(keep), recipe.total_frames, recipe.batch):  # a resume: the same batches
        plans = [_frame_inputs(renderer, recipe, index, noise_of) for index in chunk]
        pictures = renderer.generate(
            [p["cond"] for p in plans],
            [p["seed"] for p in plans],
            steps=recipe.steps,
            guidance=recipe.guidance,
            width=width,
            height=height,
            noise=torch.cat([p["noise"] for p in plans]),
            on_step=context.on_step,
        )
        for index, inputs, picture in zip(chunk, plans, pictures, strict=True):
            if index in keep:
                yield _describe(context, renderer, index, inputs, picture.unsqueeze(0), width, height)


def _frame_inputs(renderer: Renderer, recipe: InterpolateRecipe, index: int, noise_of: Any) -> dict[str, Any]:
    k, t = recipe.position(index)
    prompt_a, seed_a = recipe.keyframe(k)
    prompt_b, seed_b = recipe.keyframe(k + 1)
    cond = renderer.encode(prompt_a, recipe.negative)
    if t > 0 and prompt_b != prompt_a:
        cond = cond.lerp(renderer.encode(prompt_b, recipe.negative), t)
    noise = noise_of(seed_a) if t == 0 or seed_b == seed_a else slerp(noise_of(seed_a), noise_of(seed_b), t)
    # The generator of the keyframe's seed drives any stochastic sampler steps, as in plain txt2img.
    return {
        "cond": cond,
        "noise": noise,
        "seed": seed_a,
        "k": k,
        "t": t,
        "prompts": (prompt_a, prompt_b),
        "seeds": (seed_a, seed_b),
    }


def _describe(
    context: Context[InterpolateRecipe],
    renderer: Renderer,
    index: int,
    inputs: dict[str, Any],
    picture: torch.Tensor,
    width: int,
    height: int,
) -> Frame:
    from dreamreel.jobs.still_pictures import infotext
    from dreamreel.media.pictures import tensor_to_pil

    model, recipe = context.model, context.recipe
    t = inputs["t"]
    prompt_a, prompt_b = inputs["prompts"]
    seed_a, seed_b = inputs["seeds"]
    extra: dict[str, Any] = {"Frame": index}
    if t > 0:
        extra.update({"Interpolation": round(t, 6), "Next seed": seed_b})
    parameters = infotext(
        model, renderer, prompt=prompt_a, negative=recipe.negative, steps=recipe.steps,
        guidance=recipe.guidance, seed=seed_a, width=width, height=height, extra=extra,
    )  # fmt: skip
    facts: dict[str, Any] = {
        "frame": index,
        "seed": seed_a,
        "values": {"keyframe": inputs["k"], "t": round(t, 9), "seed_next": seed_b},
        "prompt": prompt_a,
        "model_hash": model.model_hash,
    }
    if t > 0 and prompt_b != prompt_a:
        facts["prompt_next"] = prompt_b
    return Frame(
        index=index, seed=seed_a, image=tensor_to_pil(picture)[0], recipe=recipe, parameters=parameters, facts=facts
    )


def example(samples: Samples) -> InterpolateRecipe:
    return InterpolateRecipe(prompts=["a cat", "a dog"], seeds=[1, 2], frames_between=2, batch=2, model="tiny",
                             steps=4, width=32, height=32, output=str(samples.folder / "interpolate.mp4"))  # fmt: skip


JOB = Job(
    example=example, name="interpolate", recipe=InterpolateRecipe, plan=plan, frames=frames,
    summary="Smooth video: slerp between seeds' noise, lerp between prompts' embeddings.",
)  # fmt: skip
