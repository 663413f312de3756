"""Text to a clip with an AnimateDiff motion adapter: all frames denoised together.

The loop mirrors diffusers' ``AnimateDiffPipeline`` step for step (same noise from the same generator,
the prompt's embeddings repeated per frame, one UNet call per step over every frame), so the frames
equal the pipeline's for the same components. The UNet is diffusers' ``UNetMotionModel`` (the model's
UNet with the adapter's temporal layers); the pipeline object is only a holder for diffusers' own
helpers: ``prepare_latents`` (the noise, FreeNoise's window shuffling included) and
``enable_free_noise``, which swaps the temporal transformer blocks for FreeNoise blocks. FreeNoise's
windowing lives inside those blocks; re-implementing it here would be a second copy of it.

A clip longer than the adapter's context is made with FreeNoise's overlapping context windows
(``context`` frames, every ``stride`` frames, pyramid weights). The windows meet in every temporal
layer at every step, so the whole clip, not one window, is what a step computes: a resume re-runs
the clip's denoising (the same arithmetic on the same CPU generators gives the same bits) and decodes
only the frames still missing. Each frame is decoded alone, in an unbroken run as in a resume, so a
decoded frame never depends on which others were decoded with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dreamreel.render.renderer import Renderer, _step_kwargs, align_conditionings, seeded_generator

if TYPE_CHECKING:
    import torch

    from dreamreel.models.loading import LoadedModel
    from dreamreel.render.renderer import Conditioning, StepCallback

FREE_NOISE_WEIGHTING = "pyramid"  # diffusers' default window weighting
FREE_NOISE_NOISE = "shuffle_context"  # diffusers' default: later windows reuse shuffled earlier noise


@dataclass(frozen=True)
class ClipSettings:
    frames: int
    steps: int
    guidance: float
    width: int
    height: int
    context: int  # frames the adapter sees at once; longer clips use FreeNoise windows
    stride: int  # frames between window starts


def motion_pipeline(model: LoadedModel, adapter: Any) -> Any:
    """diffusers' AnimateDiffPipeline around the model's components and its motion adapter (the UNet
    becomes a UNetMotionModel sharing no memory with the model's UNet)."""
    from diffusers import AnimateDiffPipeline, AnimateDiffSDXLPipeline

    from dreamreel.render.renderer import is_sdxl

    c = model.components
    if is_sdxl(c):
        pipe: Any = AnimateDiffSDXLPipeline(
            vae=c["vae"], text_encoder=c["text_encoder"], text_encoder_2=c["text_encoder_2"],
            tokenizer=c["tokenizer"], tokenizer_2=c["tokenizer_2"], unet=c["unet"], motion_adapter=adapter,
            scheduler=c["scheduler"],
        )  # fmt: skip
    else:
        pipe = AnimateDiffPipeline(
            vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"], unet=c["unet"],
            motion_adapter=adapter, scheduler=c["scheduler"],
        )  # fmt: skip
    if getattr(c["unet"], "add_embedding", None) is not None:
        # UNetMotionModel.from_unet2d (diffusers 0.42) leaves SDXL's added-conditioning embedding at its
        # random initialisation; the model's own weights belong there
        pipe.unet.add_embedding.load_state_dict(c["unet"].add_embedding.state_dict())
    pipe.unet.to(model.device, model.dtype).eval().requires_grad_(False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class ClipRenderer:
    """Renders clips with one model + motion adapter; text encoding and decoding are the Renderer's."""

    def __init__(self, model: LoadedModel, scheduler: str | None = None, adapter: Any = None) -> None:
        self.renderer = Renderer(model, scheduler)
        self.model = model
        self.pipe = motion_pipeline(model, adapter if adapter is not None else model.components["motion_adapter"])
        self._free_noise: tuple[int, int] | None = None

    @property
    def scheduler_name(self) -> str:
        return self.renderer.scheduler_name

    def _windows(self, settings: ClipSettings) -> None:
        """FreeNoise blocks on (or off) for this clip's length."""
        wanted = (settings.context, settings.stride) if settings.frames > settings.context else None
        if wanted == self._free_noise:
            return
        if self._free_noise is not None:
            self.pipe.disable_free_noise()
        if wanted is not None:
            if self.renderer.is_xl:
                from dreamreel.errors import DreamreelError

                raise DreamreelError("FreeNoise windows are for SD 1.x models (diffusers offers none for SDXL)")
            self.pipe.enable_free_noise(
                context_length=wanted[0], context_stride=wanted[1],
                weighting_scheme=FREE_NOISE_WEIGHTING, noise_type=FREE_NOISE_NOISE,
            )  # fmt: skip
        self._free_noise = wanted

    def denoise(
        self,
        conditioning: Conditioning | Sequence[Conditioning],
        seed: int,
        settings: ClipSettings,
        on_step: StepCallback | None = None,
        *,
        init_frames: torch.Tensor | None = None,
        strength: float | None = None,
    ) -> torch.Tensor:
        """The clip's final latents [1, C, F, h, w], as AnimateDiffPipeline computes them; from a source
        clip ``init_frames`` [F, 3, H, W] in [0, 1] with img2img ``strength`` as
        AnimateDiffVideoToVideoPipeline does (frames VAE-encoded 16 at a time, sampled from the one
        generator, then noised to the first timestep run)."""
        import torch

        self._windows(settings)
        device, dtype = self.model.device, self.model.dtype
        scheduler = self.renderer.scheduler
        self.pipe.scheduler = scheduler
        generator = seeded_generator(seed)
        frames = settings.frames
        scheduler.set_timesteps(settings.steps, device=device)
        timesteps = scheduler.timesteps
        if init_frames is None:
            latents = self.pipe.prepare_latents(
                1, self.pipe.unet.config.in_channels, frames, settings.height, settings.width,
                dtype, device, generator,
            )  # fmt: skip
        else:
            timesteps, latents = self._source_latents(init_frames, strength, settings, generator)
        use_cfg = settings.guidance > 1
        if isinstance(conditioning, Sequence):  # one per frame (a prompt schedule): [F uncond..., F cond...]
            per_frame = align_conditionings(conditioning)
            cond = torch.cat([c.cond for c in per_frame])
            embeds = torch.cat([torch.cat([c.uncond for c in per_frame]), cond]) if use_cfg else cond
            conditioning = per_frame[0]
        else:
            embeds = torch.cat([conditioning.uncond, conditioning.cond]) if use_cfg else conditioning.cond
            embeds = embeds.repeat_interleave(repeats=frames, dim=0)
        unet_kwargs: dict[str, Any] = {}
        if self.renderer.is_xl:  # pooled text and sizes per clip: the motion UNet repeats them per frame
            unet_kwargs["added_cond_kwargs"] = self.renderer._added_conditioning(
                [conditioning], use_cfg, settings.width, settings.height, img2img=False
            )
        step_kwargs = _step_kwargs(scheduler, generator)
        unet = self.pipe.unet
        with torch.inference_mode():
            for i, t in enumerate(timesteps):
                model_input = torch.cat([latents] * 2) if use_cfg else latents
                model_input = scheduler.scale_model_input(model_input, t)
                noise_pred = unet(model_input, t, encoder_hidden_states=embeds, return_dict=False, **unet_kwargs)[0]
                if use_cfg:
                    uncond_pred, text_pred = noise_pred.chunk(2)
                    noise_pred = uncond_pred + settings.guidance * (text_pred - uncond_pred)
                latents = scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=False)[0]
                if on_step is not None:
                    on_step(i + 1, len(timesteps), latents)
        return latents

    def _source_latents(
        self, init_frames: torch.Tensor, strength: float | None, settings: ClipSettings, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        from dreamreel.errors import DreamreelError
        from dreamreel.render.renderer import effective_steps

        scheduler = self.renderer.scheduler
        run = effective_steps(settings.steps, strength)
        if run < 1:
            raise DreamreelError(f"strength {strength} with {settings.steps} steps runs no denoising step")
        timesteps = scheduler.timesteps[(settings.steps - run) * scheduler.order :]
        device, dtype = self.model.device, self.model.dtype
        vae = self.model.components["vae"]
        video = (init_frames * 2 - 1).to(device, vae.dtype)
        with torch.inference_mode():
            parts = [vae.encode(video[i : i + 16]).latent_dist.sample(generator) for i in range(0, len(video), 16)]
        init = (torch.cat(parts).unsqueeze(0) * vae.config.scaling_factor).to(dtype)  # [1, F, C, h, w]
        noise = randn_tensor(init.shape, generator=generator, device=device, dtype=dtype)
        latents = scheduler.add_noise(init, noise, timesteps[:1]).permute(0, 2, 1, 3, 4)
        return timesteps, latents

    def decode_frames(self, latents: torch.Tensor, wanted: Sequence[int]) -> Iterator[tuple[int, torch.Tensor]]:
        """(frame index, [1, 3, H, W] picture in [0, 1]) for the wanted frames, each decoded alone."""
        for index in wanted:
            yield index, self.renderer.decode(latents[:, :, index])
