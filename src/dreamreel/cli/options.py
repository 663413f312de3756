"""Every option group of the CLI, defined once, and the one way options become a recipe.

Options default to None and the recipe dataclass supplies the real default, so a command (and
``rerender``) can tell which settings the user gave. An option's destination is the recipe field it
sets; ``recipe_options`` keeps exactly the given ones, turning schedule text into numbers where it
is a plain number.

Video output: every video command needs ``-o NAME.mp4`` (.webm, .gif). No default name: the run
folder ``NAME.run/`` is named after the video, and a default would let a second film silently replace
the first one's run folder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dreamreel.recipes.base import Recipe, with_preset
from dreamreel.recipes.overrides import number_or_schedule
from dreamreel.recipes.seeds import SEED_MODES
from dreamreel.render.samplers import PRESETS

F = Callable[..., Any]
SCHEDULE_HELP = "a number or keyframes like '0:(1.02), 30:(1.0+0.01*sin(t/5))'"


def options(*decorators: F) -> F:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def schedulable(name: str, help: str) -> F:
    """An option whose value is a number or a keyframe schedule (``SCHEDULE_HELP``)."""
    return click.option(name, help=f"{help}: {SCHEDULE_HELP}.")


# What loads and runs the model: every command that renders takes these.
model_options = options(
    click.option(
        "--model",
        help="tiny, a diffusers folder, a .safetensors checkpoint or a Hugging Face id (default SD 1.5).",
    ),
    click.option("--vae", help="A VAE file (.safetensors) to use instead of the model's."),
    click.option("--lora", "loras", multiple=True, help="A LoRA file, FILE or FILE:WEIGHT (repeatable)."),
    click.option(
        "--allow-unsafe-pickle",
        is_flag=True,
        default=None,
        help="Load pickle weights (.ckpt/.pt/.bin) with torch.load(weights_only=True); trusted files only.",
    ),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Default auto."),
    click.option("--dtype", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), help="Default auto."),
    click.option(
        "--compile",
        is_flag=True,
        default=None,
        help="torch.compile UNet and VAE (CUDA graphs on a GPU): same pictures within fp16 rounding; "
        "the first frame compiles for a minute or two, later ones run ~3x faster on a GPU.",
    ),
    click.option(
        "--preset",
        type=click.Choice(list(PRESETS)),
        help="Few-step settings (steps, guidance, scheduler; given options win): "
        + "; ".join(f"{p.name}: {p.steps} steps, guidance {p.guidance:g}, {p.scheduler} ({p.models})" for p in PRESETS.values())
        + ".",
    ),
    click.option(
        "--offload",
        type=click.Choice(["none", "model", "sequential"]),
        help="Small GPUs: model keeps only the working component on the GPU (text encoders leave after "
        "encoding); sequential streams layer by layer (least memory, slowest). Same pictures. Default none.",
    ),
    click.option(
        "--vae-tiling", is_flag=True, default=None, help="Decode large pictures in tiles (less GPU memory)."
    ),
    click.option("--quiet", is_flag=True, help="No progress bars."),
    click.option("--debug", is_flag=True, help="Show tracebacks."),
)

# The picture: what to avoid, how big, which sampler (steps and guidance come per command: numbers
# for stills, schedules for films).
picture_options = options(
    click.option("--negative", help="Negative prompt (what to avoid)."),
    click.option("--width", type=int, help="Width, a multiple of 8 (default: the model's native size)."),
    click.option("--height", type=int, help="Height, a multiple of 8 (default: the model's native size)."),
    click.option("--scheduler", help='A1111 sampler name: "Euler a", "DPM++ 2M Karras", DDIM, PLMS, ...'),
    model_options,
)

steps_option = click.option("--steps", type=int, help="Denoising steps (default 50).")
guidance_option = click.option("--guidance", type=float, help="Classifier-free guidance scale (default 7.5).")
scheduled_steps_option = schedulable("--steps", "Denoising steps (default 50)")
scheduled_guidance_option = schedulable("--guidance", "Classifier-free guidance scale (default 7.5)")

seed_loop_options = options(
    click.option("--seed", type=int, help="One seed."),
    click.option("--seeds", "seed_list", help="Seeds to loop over: 1,5,9 or 1-20."),
    click.option("--count", type=int, help="Draw N random seeds (printed and recorded)."),
    click.option("--out", "-o", help="Output folder (default outputs/)."),
    click.option("--batch", type=int, help="Seeds per UNet call (default 1; same pictures, can be faster on GPUs)."),
)

# Still pictures: plain numbers for steps and guidance, the picture, a seed loop into a folder.
still_options = options(steps_option, guidance_option, picture_options, seed_loop_options)

# ControlNets (txt2img, img2img): what each follows, how strongly, and during which steps.
control_options = options(
    click.option(
        "--controlnet",
        multiple=True,
        help="KIND:FILE[:WEIGHT] (repeatable): KIND canny (OpenCV edges of the picture), tile (the picture "
        "itself) or image (--control-image as it is); FILE a ControlNet .safetensors, diffusers folder or tiny.",
    ),
    click.option("--control-image", help="The picture the ControlNets follow (txt2img; kind image)."),
    click.option("--control-start", type=float, help="Fraction of the steps before ControlNets act (default 0)."),
    click.option("--control-end", type=float, help="Fraction of the steps after which they stop (default 1)."),
)

video_options = options(
    click.option("--output", "-o", required=True, help="The video: NAME.mp4, .webm or .gif (run folder NAME.run/)."),
    click.option("--fps", help="Frames per second; fractions allowed (30000/1001)."),
    click.option("--reverse", is_flag=True, default=None, help="Play backwards."),
    click.option("--pingpong", is_flag=True, default=None, help="Play forth and back (loops seamlessly)."),
    click.option(
        "--audio",
        help="Sound file to lay under the video, cut to its length; schedules may then use its loudness a "
        "and its beats beat (0..1 at each frame's time).",
    ),
    click.option(
        "--interpolate-to",
        help="Play at this higher rate (e.g. 24): in-between frames made by optical flow while encoding; "
        "the rendered frames stay as they are.",
    ),
)

# Where to render: this process, or a Ray cluster (Ray is imported only when --cluster is given).
cluster_options = options(
    click.option(
        "--cluster",
        metavar="auto|ADDRESS",
        help='Render on a Ray cluster, the same pictures bit for bit: auto starts one here, ADDRESS joins '
        '`ray start --head` (needs pip install "dreamreel[cluster]").',
    ),
    click.option("--workers", type=int, help="Render workers with --cluster (default: one per GPU, else one per CPU)."),
)

film_seed_options = options(
    click.option("--seed", type=int, help="The seed (default: drawn at random and printed; zoom: 1, the guide's)."),
    click.option(
        "--seed-mode",
        type=click.Choice(SEED_MODES),
        help="fixed (default, steadier), iter +1 a frame, random, ladder +2 -1, alternate between two.",
    ),
)


def recipe_options(recipe_cls: type[Recipe], given: dict[str, Any], **fixed: Any) -> Recipe:
    """The recipe of the options the user gave (None, an unset flag and an empty repeatable are not
    given); every option named after a field of ``recipe_cls`` is taken, nothing is listed twice."""
    fields: dict[str, Any] = {}
    probe_scheduled = {s.name for s in recipe_cls.SCHEDULED}
    for name in recipe_cls.field_names():
        value = given.get(name)
        if value is None or value is False or value == ():
            continue
        if isinstance(value, tuple):
            value = list(value)
        if name in probe_scheduled and isinstance(value, str):
            value = number_or_schedule(value)
        fields[name] = value
    fields.update(fixed)
    return recipe_cls(**with_preset(fields))
