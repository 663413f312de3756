"""The one hot path every job goes through: encode prompt -> prepare latents -> denoise -> decode.

It mirrors diffusers' StableDiffusionPipeline / StableDiffusionImg2ImgPipeline and, for SDXL models
(a second text encoder), StableDiffusionXLPipeline / StableDiffusionXLImg2ImgPipeline step for step
(same random draws from the same generators in the same order), so for equal components, seed and
settings our pictures equal the reference pipeline's; the tests hold us to that. What it adds:
prompt embeddings cached across frames and seeds, batches of independent items each with its own
seed (a batch gives the same pictures as one item at a time), a starting noise the caller may
supply (for interpolation), and a VAE decode that is checked for NaN / black output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
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
    SDXL adds the pooled text embedding of its second encoder, [1, P], for the prompt and the negative.
    """

    cond: torch.Tensor
    uncond: torch.Tensor
    empty: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    uncond_pooled: torch.Tensor | None = None

    def lerp(self, other: Conditioning, weight: float) -> Conditioning:
        """Linear interpolation of the embeddings (prompt blending)."""
        a, b = align_conditionings([self, other])
        return Conditioning(
            cond=_lerp(a.cond, b.cond, weight),
            uncond=_lerp(a.uncond, b.uncond, weight),
            empty=a.empty,
            pooled=_lerp(a.pooled, b.pooled, weight),
            uncond_pooled=_lerp(a.uncond_pooled, b.uncond_pooled, weight),
        )


def _lerp(a: Any, b: Any, weight: float) -> Any:
    return None if a is None or b is None else a + (b - a) * weight


def align_conditionings(conditioning: Sequence[Conditioning]) -> list[Conditioning]:
    """Pad every item's cond and uncond to the same number of chunks (no-op for 77-token prompts).
    An all-zero negative (SDXL's empty negative prompt) stays all zeros."""
    import torch

    from dreamreel.render.prompts import pad_to_chunks

    lengths = {t.shape[1] for c in conditioning for t in (c.cond, c.uncond)}
    if len(lengths) <= 1:
        return list(conditioning)
    empty = next((c.empty for c in conditioning if c.empty is not None), None)
    if empty is None:
        raise ValueError("conditionings of different lengths need the empty-prompt chunk to be aligned")
    chunks = max(lengths) // empty.shape[1]

    def padded(t: torch.Tensor) -> torch.Tensor:
        return pad_to_chunks(t, chunks, torch.zeros_like(empty) if not t.any() else empty)

    return [
        dataclasses.replace(c, cond=padded(c.cond), uncond=padded(c.uncond))
        for c in conditioning
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


@contextlib.contextmanager
def out_of_memory_hint() -> Iterator[None]:
    """A CUDA out-of-memory error becomes one line naming what lowers the memory."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as exc:
        raise DreamreelError(
            "the GPU ran out of memory; try --offload model (or sequential, the least memory), "
            "--vae-tiling, --batch 1 or a smaller --width/--height"
        ) from exc


@dataclass(frozen=True)
class ControlInput:
    """What the model's ControlNet(s) see for one batch: one control picture batch [B, 3, H, W] in
    [0, 1] per ControlNet (in the order of ``components["controlnet"]``), each one's weight, and the
    fractions of the steps run (A1111's guidance start / end) during which they act."""

    images: Sequence[torch.Tensor]
    weights: Sequence[float]
    start: float = 0.0
    end: float = 1.0


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
        self.is_xl = is_sdxl(model.components)
        self._encodings: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._last_encoded: tuple[torch.Tensor, Any] | None = None  # (picture, its latent distribution)

    # -- text ---------------------------------------------------------------------------------

    def _encode_text(self, text: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._encode_texts([text])[0]

    def _encode_texts(self, texts: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """[1, 77 * chunks, D] embeddings, and SDXL's pooled [1, P] (else None), of each text; A1111
        weights and long-prompt chunks (see prompts.py). SDXL: both encoders' penultimate hidden states
        side by side (D = 768 + 1280), the pooled output from the second, as diffusers' ``encode_prompt``
        does. Encoder by encoder, so that under ``--offload`` each visits the GPU once for all texts."""
        import torch

        from dreamreel.render.prompts import encode_prompt_layers, tokenize_text

        missing = [text for text in dict.fromkeys(texts) if text not in self._encodings]
        if missing:
            components, device, dtype = self.model.components, self.model.device, self.model.dtype
            tokenizer = components.get("tokenizer") or components["tokenizer_2"]
            tokenized = {text: tokenize_text(tokenizer, text) for text in missing}
            for tokens in tokenized.values():
                if tokens.dropped:
                    log.warning(
                        "prompt is longer than %d chunks of 75 tokens; dropped: %r",
                        len(tokens.chunks), tokenizer.decode(tokens.dropped),
                    )  # fmt: skip
            pairs = [("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")] if self.is_xl else [
                ("tokenizer", "text_encoder")
            ]
            parts: dict[str, list[torch.Tensor]] = {text: [] for text in missing}
            pooled: dict[str, torch.Tensor | None] = dict.fromkeys(missing)
            for tokenizer_key, encoder_key in pairs:
                if components.get(encoder_key) is None:
                    continue
                encoder = self.model.use(encoder_key)
                for text in missing:
                    encoded = encode_prompt_layers(
                        components[tokenizer_key], encoder, text, device, dtype,
                        penultimate=self.is_xl, tokenized=tokenized[text],
                    )  # fmt: skip
                    parts[text].append(encoded.embeds)
                    if encoded.pooled is not None:
                        pooled[text] = encoded.pooled
            for text in missing:
                self._encodings[text] = (torch.cat(parts[text], dim=-1), pooled[text])
        return [self._encodings[text] for text in texts]

    def encode(self, prompt: str, negative: str = "") -> Conditioning:
        """Embeddings of a prompt and its negative (padded to the same number of chunks), cached.

        SDXL: an empty negative prompt is all zeros where the model says so (``force_zeros_for_empty_prompt``,
        SDXL base's setting; diffusers does this for a negative prompt that is not given, A1111 for an
        empty one)."""
        import torch

        from dreamreel.render.prompts import same_length

        zero_negative = (
            self.is_xl and negative == "" and self.model.components.get("force_zeros_for_empty_prompt", True)
        )
        encoded = self._encode_texts([prompt] if zero_negative else [prompt, negative])
        cond, pooled = encoded[0]
        if zero_negative:
            uncond = torch.zeros_like(cond)
            uncond_pooled = None if pooled is None else torch.zeros_like(pooled)
        else:
            uncond, uncond_pooled = encoded[1]
        extra = {"pooled": pooled, "uncond_pooled": uncond_pooled}
        if max(cond.shape[1], uncond.shape[1]) == cond.shape[1] == uncond.shape[1] == CLIP_CHUNK:
            return Conditioning(cond=cond, uncond=uncond, **extra)
        empty = self._encode_text("")[0]  # long prompts: the padding chunk, kept for blending/alignment
        if zero_negative:
            return Conditioning(cond=cond, uncond=uncond, empty=empty, **extra)
        cond, uncond = same_length([cond, uncond], empty)
        return Conditioning(cond=cond, uncond=uncond, empty=empty, **extra)

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

        vae = self._vae()
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
        dist = self._vae().encode(picture).latent_dist
        self._last_encoded = (picture.clone(), dist)
        return dist

    # -- denoise ------------------------------------------------------------------------------

    @out_of_memory_hint()
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
        control: ControlInput | None = None,
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
                init_images=init_images, strength=strength, noise=noise, on_step=on_step, control=control,
                start_noise=start_noise,
            )  # fmt: skip
        device, dtype = self.model.device, self.model.dtype
        generators = [seeded_generator(s) for s in seeds]
        generator = generators if batch > 1 else generators[0]
        scheduler = self.scheduler
        unet = self.model.components["unet"]

        scheduler.set_timesteps(steps, device=device)
        timesteps = scheduler.timesteps
        if init_images is None:
            if self.is_xl and hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(0)  # as StableDiffusionXLPipeline does
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

        # diffusers' do_classifier_free_guidance: guidance <= 1 (Turbo, Lightning, LCM-LoRA at 1) and
        # LCM models, whose UNet takes the guidance as an embedding, run one UNet pass, not two
        use_cfg = guidance > 1 and unet.config.time_cond_proj_dim is None
        cond = torch.cat([c.cond for c in conditioning])
        embeds = torch.cat([torch.cat([c.uncond for c in conditioning]), cond]) if use_cfg else cond
        unet_kwargs: dict[str, Any] = {}
        if unet.config.time_cond_proj_dim is not None:
            unet_kwargs["timestep_cond"] = guidance_embedding(
                guidance, batch, unet.config.time_cond_proj_dim
            ).to(device=device, dtype=latents.dtype)
        if self.is_xl:
            unet_kwargs["added_cond_kwargs"] = self._added_conditioning(
                conditioning, use_cfg, width, height, img2img=init_images is not None
            )
        step_kwargs = _step_kwargs(scheduler, generator)
        unet = self.model.use("unet")

        with torch.inference_mode():
            if control is not None:  # on the device and doubled for guidance once, not at every step
                control = dataclasses.replace(control, images=[
                    torch.cat([image] * 2) if use_cfg else image
                    for image in (i.to(self.model.device, self.model.dtype) for i in control.images)
                ])  # fmt: skip
            for i, t in enumerate(timesteps):
                model_input = torch.cat([latents] * 2) if use_cfg else latents
                model_input = scheduler.scale_model_input(model_input, t)
                residuals = {} if control is None else self._control_residuals(
                    control, model_input, t, embeds, unet_kwargs, i, len(timesteps)
                )  # fmt: skip
                noise_pred = unet(
                    model_input, t, encoder_hidden_states=embeds, return_dict=False, **unet_kwargs, **residuals
                )[0]
                if use_cfg:
                    uncond_pred, text_pred = noise_pred.chunk(2)
                    noise_pred = uncond_pred + guidance * (text_pred - uncond_pred)
                else:  # multistep schedulers keep it; a CUDA-graph replay would overwrite the original
                    noise_pred = noise_pred.clone()
                latents = scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=False)[0]
                if on_step is not None:
                    on_step(i + 1, len(timesteps), latents)
        return self.decode(latents)

    def _control_residuals(
        self,
        control: ControlInput,
        model_input: torch.Tensor,
        t: Any,
        embeds: torch.Tensor,
        unet_kwargs: dict[str, Any],
        step: int,
        steps: int,
    ) -> dict[str, Any]:
        """The ControlNets' residuals for the UNet's down and mid blocks at step ``step`` of ``steps``
        run, as diffusers' ControlNet pipelines compute them: a net acts (at its weight) only while
        ``start <= step / steps`` and ``(step + 1) / steps <= end``; several nets' residuals add up.
        ``control.images`` are ready for the UNet's batch (on the device, doubled under guidance)."""
        net = self.model.components["controlnet"]
        keep = 1.0 - float(step / steps < control.start or (step + 1) / steps > control.end)
        images = list(control.images)
        several = len(images) > 1
        extra = {"added_cond_kwargs": unet_kwargs["added_cond_kwargs"]} if "added_cond_kwargs" in unet_kwargs else {}
        down, mid = net(
            model_input, t, encoder_hidden_states=embeds,
            controlnet_cond=images if several else images[0],
            conditioning_scale=[w * keep for w in control.weights] if several else control.weights[0] * keep,
            guess_mode=False, return_dict=False, **extra,
        )  # fmt: skip
        return {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}

    def _added_conditioning(
        self, conditioning: Sequence[Conditioning], use_cfg: bool, width: int, height: int, *, img2img: bool
    ) -> dict[str, torch.Tensor]:
        """SDXL's extra UNet inputs: the pooled text embeddings and ``add_time_ids`` = original size,
        crop top-left (0, 0), target size, all (height, width) of the picture made, as diffusers'
        pipelines pass them by default. A model trained with aesthetic scores (the refiner kind, told by
        its UNet's input width) reads original size, crop and score (6 and 2.5 for the negative,
        diffusers' defaults) in img2img."""
        import torch

        unet = self.model.components["unet"]
        pooled = torch.cat([c.pooled for c in conditioning])  # type: ignore[misc]
        size = (height, width)
        time_ids: list[float] = [*size, 0, 0, *size]
        negative_ids = time_ids
        if img2img and _takes_aesthetic_score(unet, pooled.shape[-1]):
            time_ids, negative_ids = [*size, 0, 0, 6.0], [*size, 0, 0, 2.5]
        batch = len(conditioning)
        ids = torch.tensor([time_ids], dtype=pooled.dtype).repeat(batch, 1)
        if use_cfg:
            pooled = torch.cat([torch.cat([c.uncond_pooled for c in conditioning]), pooled])  # type: ignore[misc]
            ids = torch.cat([torch.tensor([negative_ids], dtype=pooled.dtype).repeat(batch, 1), ids])
        return {"text_embeds": pooled, "time_ids": ids.to(self.model.device)}

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
            if settings["control"] is not None:
                sub["control"] = dataclasses.replace(
                    settings["control"], images=[image[indices] for image in settings["control"].images]
                )
            rendered = self.generate([conditioning[i] for i in indices], [seeds[i] for i in indices], **sub)
            for j, i in enumerate(indices):
                pictures[i] = rendered[j]
        return torch.stack(pictures)  # type: ignore[arg-type]

    def _vae(self) -> Any:
        """The VAE, in fp32 where diffusers' SDXL pipelines would upcast it (``force_upcast``: SDXL's VAE
        overflows in fp16 and decodes black or NaN pictures). It stays fp32 from then on: moving it back
        and forth every frame would cost more than the memory it saves."""
        import torch

        vae = self.model.use("vae")
        if self.is_xl and vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
            vae.to(torch.float32)
        return vae

    def _tile_if_it_would_not_fit(self, vae: Any, latents: torch.Tensor) -> None:
        """Turn VAE tiling on (for good, with a warning) when a CUDA decode would not fit the free memory:
        tiles blend at their seams, so it is never on unless asked (--vae-tiling) or needed."""
        import torch

        if getattr(vae, "use_tiling", True) or self.model.device.type != "cuda":
            return
        free, _ = torch.cuda.mem_get_info(self.model.device)
        batch, _, height, width = latents.shape
        pixels = batch * height * width * self.model.vae_scale_factor**2
        # A rough bound: the decoder's last stage holds a few full-size maps of its widest-at-full-size
        # channel count (128 for SD and SDXL) at once, plus normalisation temporaries.
        need = pixels * vae.config.block_out_channels[0] * vae.dtype.itemsize * 6
        if need > free:
            log.warning("the VAE decode needs ~%.1f GiB, %.1f GiB is free: decoding in tiles", need / 2**30, free / 2**30)
            vae.enable_tiling()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> [0, 1] pictures on the CPU; a NaN or all-black result is retried with an fp32 VAE."""
        import torch

        vae = self._vae()
        self._tile_if_it_would_not_fit(vae, latents)
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


def is_sdxl(components: dict[str, Any]) -> bool:
    """SDXL-class models have a second text encoder (and a UNet that takes pooled text and sizes)."""
    return components.get("text_encoder_2") is not None


def _takes_aesthetic_score(unet: Any, pooled_width: int) -> bool:
    """Does the UNet's added embedding read 5 numbers (sizes, crop, aesthetic score: the SDXL refiner's
    ``requires_aesthetics_score``) rather than 6 (sizes, crop, target size)?"""
    inputs = unet.add_embedding.linear_1.in_features
    return bool(inputs == 5 * unet.config.addition_time_embed_dim + pooled_width)


def guidance_embedding(guidance: float, batch: int, dim: int) -> torch.Tensor:
    """LCM's guidance-scale embedding (w - 1, as diffusers' pipelines pass it) for UNets with
    ``time_cond_proj_dim``; diffusers' own function, which its pipelines keep as a method."""
    import torch
    from diffusers import StableDiffusionPipeline

    w = torch.tensor(guidance - 1).repeat(batch)
    return StableDiffusionPipeline.get_guidance_scale_embedding(None, w, embedding_dim=dim)


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
