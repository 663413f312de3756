"""The one hot path every job goes through: encode prompt -> prepare latents -> denoise -> decode.

It mirrors diffusers' StableDiffusionPipeline / StableDiffusionImg2ImgPipeline step for step (same
random draws from the same generators in the same order), so for equal components, seed and
settings our pictures equal the reference pipeline's; the tests hold us to that. What it adds:
prompt embeddings cached across frames and seeds, batches of independent items each with its own
seed (a batch gives the same pictures as one item at a time), a starting noise the caller may
supply (for interpolation), and a VAE decode that is checked for NaN / black output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError
from dreamreel.render.samplers import make_scheduler, pipeline_normalized, scheduler_name_for

if TYPE_CHECKING:
    import torch

    from dreamreel.models.loading import LoadedModel

log = logging.getLogger("dreamreel")

# step done, steps in all, the latents after that step (a live preview may look at them, never change them)
StepCallback = Callable[[int, int, "torch.Tensor"], None]
CLIP_CHUNK = 77  # tokens per encoded chunk (start + 75 + end)


@dataclass(frozen=True)
class Conditioning:
    """Text embeddings for one item: ``cond`` and ``uncond`` are [1, 77 * chunks, dim] on the model device.

    Long prompts have several 77-token chunks; ``empty`` (the empty prompt's chunk) pads a shorter
    embedding so that items of a batch, a prompt and its negative, or two blended prompts line up.
    """

    cond: torch.Tensor
    uncond: torch.Tensor
    empty: torch.Tensor | None = None

    def lerp(self, other: Conditioning, weight: float) -> Conditioning:
        """Linear interpolation of the embeddings (prompt blending)."""
        a, b = align_conditionings([self, other])
        return Conditioning(
            cond=a.cond + (b.cond - a.cond) * weight,
            uncond=a.uncond + (b.uncond - a.uncond) * weight,
            empty=a.empty,
        )


def align_conditionings(conditioning: Sequence[Conditioning]) -> list[Conditioning]:
    """Pad every item's cond and uncond to the same number of chunks (no-op for 77-token prompts)."""
    from dreamreel.render.prompts import same_length

    lengths = {t.shape[1] for c in conditioning for t in (c.cond, c.uncond)}
    if len(lengths) <= 1:
        return list(conditioning)
    empty = next((c.empty for c in conditioning if c.empty is not None), None)
    if empty is None:
        raise ValueError("conditionings of different lengths need the empty-prompt chunk to be aligned")
    padded = same_length([t for c in conditioning for t in (c.cond, c.uncond)], empty)
    return [
        Conditioning(cond=padded[2 * i], uncond=padded[2 * i + 1], empty=c.empty)
        for i, c in enumerate(conditioning)
    ]


def effective_steps(steps: int, strength: float | None) -> int:
    """Denoising steps actually run: ``int(steps * strength)`` for img2img (diffusers' rule), else steps."""
    if strength is None:
        return steps
    return min(int(steps * strength), steps)


def fixed_batches(wanted: Sequence[int], total: int, batch: int) -> list[list[int]]:
    """The batches that render items ``wanted`` of ``total``: the fixed chunks [0, B), [B, 2B), ...
    holding any of them, each whole.

    A batch's pictures equal single renders only within float rounding (a different batch size can
    pick a different kernel), so an item is always rendered in the same company: a resume, or a re-run
    of some items, then gives exactly the bits of the first run. Callers keep only the wanted items.
    """
    chunks = sorted({index // batch for index in wanted})
    return [list(range(c * batch, min((c + 1) * batch, total))) for c in chunks]


def seeded_generator(seed: int) -> torch.Generator:
    """Seed N's noise comes from a CPU generator, as in diffusers: the same picture on any device."""
    import torch

    return torch.Generator("cpu").manual_seed(int(seed))


class Renderer:
    """Renders pictures with one loaded model and one scheduler kind; caches prompt encodings."""

    def __init__(self, model: LoadedModel, scheduler: str | None = None) -> None:
        self.model = model
        base = model.components["scheduler"]
        self.scheduler = make_scheduler(scheduler, base) if scheduler else pipeline_normalized(base)
        self.scheduler_name = scheduler_name_for(self.scheduler)
        self._encodings: dict[str, torch.Tensor] = {}
        self._last_encoded: tuple[torch.Tensor, Any] | None = None  # (picture, its latent distribution)

    # -- text ---------------------------------------------------------------------------------

    def _encode_text(self, text: str) -> torch.Tensor:
        """[1, 77 * chunks, D] embeddings; A1111 weights and long-prompt chunks (see prompts.py)."""
        from dreamreel.render.prompts import encode_prompt

        cached = self._encodings.get(text)
        if cached is not None:
            return cached
        components = self.model.components
        if components.get("text_encoder_2") is not None:
            raise DreamreelError(
                "SDXL models load (Python API: load_model(...).components) but dreamreel renders "
                "SD 1.x and 2.x only so far"
            )
        embeds, tokenized = encode_prompt(
            components["tokenizer"], components["text_encoder"], text, self.model.device, self.model.dtype
        )
        if tokenized.dropped:
            dropped = components["tokenizer"].decode(tokenized.dropped)
            log.warning(
                "prompt is longer than %d chunks of 75 tokens; dropped: %r", len(tokenized.chunks), dropped
            )
        self._encodings[text] = embeds
        return embeds

    def encode(self, prompt: str, negative: str = "") -> Conditioning:
        """Embeddings of a prompt and its negative (padded to the same number of chunks), cached."""
        from dreamreel.render.prompts import same_length

        cond, uncond = self._encode_text(prompt), self._encode_text(negative)
        if max(cond.shape[1], uncond.shape[1]) == cond.shape[1] == uncond.shape[1] == CLIP_CHUNK:
            return Conditioning(cond=cond, uncond=uncond)
        empty = self._encode_text("")  # long prompts: the padding chunk, kept for blending/alignment
        cond, uncond = same_length([cond, uncond], empty)
        return Conditioning(cond=cond, uncond=uncond, empty=empty)

    # -- latents ------------------------------------------------------------------------------

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int]:
        factor = self.model.vae_scale_factor
        return (self.model.components["unet"].config.in_channels, height // factor, width // factor)

    def initial_noise(self, seed: int, width: int, height: int) -> torch.Tensor:
        """The starting noise of a seed, [1, C, h, w], exactly as diffusers' ``prepare_latents`` draws it."""
        from diffusers.utils.torch_utils import randn_tensor

        return randn_tensor(
            (1, *self.latent_shape(width, height)),
            generator=seeded_generator(seed),
            device=self.model.device,
            dtype=self.model.dtype,
        )

    def encode_images(self, images: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """VAE-encode [-1, 1] pictures to scaled latents, sampling each item with its own generator.

        One picture for every item (a seed loop or a sweep over one image) is encoded once, and the
        encoding is kept for the next call with the same picture: only each seed's sample is drawn, as
        diffusers draws it, so the latents are the same as encoding the picture again for every seed.
        """
        import torch

        vae = self.model.components["vae"]
        with torch.inference_mode():
            # one memory layout whatever the caller's tensor has: a compiled encoder would recompile
            images = images.to(self.model.device, vae.dtype).contiguous()
            if all(torch.equal(images[i], images[0]) for i in range(1, len(images))):
                one = self._encoded_picture(images[:1])
                dist = type(one)(one.parameters.expand(len(images), -1, -1, -1))
            else:
                dist = vae.encode(images).latent_dist
            latents = dist.sample(list(generators) if len(generators) > 1 else generators[0])
        # plain NCHW like the seeds' noise: a compiled UNet would recompile for a second memory layout
        return (latents * vae.config.scaling_factor).to(self.model.dtype).contiguous()

    def _encoded_picture(self, picture: torch.Tensor) -> Any:
        """The VAE's latent distribution of one picture [1, 3, H, W], kept for the next identical picture."""
        import torch

        last = self._last_encoded
        same_kind = last is not None and (last[0].shape, last[0].dtype) == (picture.shape, picture.dtype)
        if same_kind and torch.equal(last[0], picture):  # type: ignore[index]
            return last[1]  # type: ignore[index]
        dist = self.model.components["vae"].encode(picture).latent_dist
        self._last_encoded = (picture.clone(), dist)
        return dist

    # -- denoise ------------------------------------------------------------------------------

    def generate(
        self,
        conditioning: Sequence[Conditioning],
        seeds: Sequence[int],
        *,
        steps: int,
        guidance: float,
        width: int,
        height: int,
        init_images: torch.Tensor | None = None,
        strength: float | None = None,
        noise: torch.Tensor | None = None,
        on_step: StepCallback | None = None,
        start_noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render a batch; returns [B, 3, H, W] float pictures in [0, 1] on the CPU.

        Text-to-image when ``init_images`` is None (``noise`` may replace the seeds' starting noise,
        the generators still drive any stochastic sampler steps); image-to-image otherwise, with
        ``init_images`` as [0, 1] pixels [B, 3, H, W] or ready latents [B, 4, h, w] and diffusers'
        ``strength`` semantics; ``start_noise`` [B, C, h, w] may replace the noise img2img adds to the
        picture's latents (vid2vid's --flow-noise moves it along the source's motion).
        """
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        batch = len(seeds)
        if len(conditioning) != batch:
            raise ValueError("one conditioning per seed is required")
        if len({c.cond.shape[1] for c in conditioning}) > 1:  # long prompts of different chunk counts
            return self._generate_by_length(
                conditioning, seeds, steps=steps, guidance=guidance, width=width, height=height,
                init_images=init_images, strength=strength, noise=noise, on_step=on_step, start_noise=start_noise,
            )  # fmt: skip
        device, dtype = self.model.device, self.model.dtype
        generators = [seeded_generator(s) for s in seeds]
        generator = generators if batch > 1 else generators[0]
        scheduler = self.scheduler
        unet = self.model.components["unet"]

        scheduler.set_timesteps(steps, device=device)
        timesteps = scheduler.timesteps
        if init_images is None:
            if noise is None:
                noise = randn_tensor((batch, *self.latent_shape(width, height)), generator, device, dtype)
            latents = noise.to(device, dtype) * scheduler.init_noise_sigma
        else:
            run = effective_steps(steps, strength)
            if run < 1:
                raise DreamreelError(
                    f"strength {strength} with {steps} steps runs int({steps} x {strength}) = 0 steps"
                )
            t_start = steps - run
            timesteps = timesteps[t_start * scheduler.order :]
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(t_start * scheduler.order)
            if init_images.shape[1] == 4:
                init_latents = init_images.to(device, dtype)
            else:
                init_latents = self.encode_images(init_images * 2 - 1, generators)
            if start_noise is None:
                start_noise = randn_tensor(init_latents.shape, generator, device, dtype)
            latents = scheduler.add_noise(init_latents, start_noise.to(device, dtype), timesteps[:1].repeat(batch))

        use_cfg = guidance > 1 and unet.config.time_cond_proj_dim is None
        cond = torch.cat([c.cond for c in conditioning])
        embeds = torch.cat([torch.cat([c.uncond for c in conditioning]), cond]) if use_cfg else cond
        step_kwargs = _step_kwargs(scheduler, generator)

        with torch.inference_mode():
            for i, t in enumerate(timesteps):
                model_input = torch.cat([latents] * 2) if use_cfg else latents
                model_input = scheduler.scale_model_input(model_input, t)
                noise_pred = unet(model_input, t, encoder_hidden_states=embeds, return_dict=False)[0]
                if use_cfg:
                    uncond_pred, text_pred = noise_pred.chunk(2)
                    noise_pred = uncond_pred + guidance * (text_pred - uncond_pred)
                else:  # multistep schedulers keep it; a CUDA-graph replay would overwrite the original
                    noise_pred = noise_pred.clone()
                latents = scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=False)[0]
                if on_step is not None:
                    on_step(i + 1, len(timesteps), latents)
        return self.decode(latents)

    def _generate_by_length(
        self, conditioning: Sequence[Conditioning], seeds: Sequence[int], **settings: Any
    ) -> torch.Tensor:
        """Render items with prompts of different chunk counts as one sub-batch per count: padding a
        short prompt to a long one's length would change its picture, and a batch must give what one
        item at a time gives."""
        import torch

        pictures: list[torch.Tensor | None] = [None] * len(seeds)
        groups: dict[int, list[int]] = {}
        for i, c in enumerate(conditioning):
            groups.setdefault(c.cond.shape[1], []).append(i)
        for indices in groups.values():
            sub = dict(settings)
            for key in ("init_images", "noise", "start_noise"):
                if settings[key] is not None:
                    sub[key] = settings[key][indices]
            rendered = self.generate([conditioning[i] for i in indices], [seeds[i] for i in indices], **sub)
            for j, i in enumerate(indices):
                pictures[i] = rendered[j]
        return torch.stack(pictures)  # type: ignore[arg-type]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> [0, 1] pictures on the CPU; a NaN or all-black result is retried with an fp32 VAE."""
        import torch

        vae = self.model.components["vae"]
        with torch.inference_mode():
            images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
            if _looks_broken(images) and vae.dtype != torch.float32:
                log.warning("VAE decode in %s gave NaN/black output; retrying in fp32", vae.dtype)
                vae.to(torch.float32)
                images = vae.decode(latents.float() / vae.config.scaling_factor, return_dict=False)[0]
        if not torch.isfinite(images).all():
            raise DreamreelError("the VAE decoded NaN values even in fp32; the model weights may be broken")
        # contiguous: a channels_last VAE hands back NHWC memory; callers expect plain NCHW tensors.
        return (images.float() / 2 + 0.5).clamp(0, 1).cpu().contiguous()


def _looks_broken(images: torch.Tensor) -> bool:
    import torch

    return bool(not torch.isfinite(images).all() or (images <= -1).all())


def _step_kwargs(scheduler: object, generator: object) -> dict[str, object]:
    """Pass ``eta``/``generator`` only to schedulers whose ``step`` takes them (as diffusers does)."""
    import inspect

    params = set(inspect.signature(scheduler.step).parameters)  # type: ignore[attr-defined]
    kwargs: dict[str, object] = {}
    if "eta" in params:
        kwargs["eta"] = 0.0
    if "generator" in params:
        kwargs["generator"] = generator
    return kwargs
