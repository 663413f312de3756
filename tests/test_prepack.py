"""CPU convolutions with weights reordered once (prepack.py) compute what stock convolutions do.

Tolerance: 1e-4 on UNet outputs of order 1, the equivalence contract; measured ~5e-6 on SD 1.5 at
256x256 (float rounding of oneDNN's differently blocked sums).
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from dreamreel.models.prepack import (
    PrepackedConv2d,
    prepack_available,
    prepack_convolutions,
    unpack_convolutions,
)

pytestmark = pytest.mark.skipif(not prepack_available(), reason="this torch build has no oneDNN")
TOLERANCE = 1e-4


def _unet_inputs(batch: int = 2, side: int = 8):
    generator = torch.Generator().manual_seed(5)
    sample = torch.randn(batch, 4, side, side, generator=generator)
    embeds = torch.randn(batch, 77, 32, generator=generator)
    return sample, torch.tensor(500), embeds


def _stock_and_packed(tiny_model):
    stock = copy.deepcopy(tiny_model.components["unet"])
    unpack_convolutions(stock)
    packed = copy.deepcopy(stock)
    return stock, packed, prepack_convolutions(packed)


def test_loaded_cpu_models_use_prepacked_convolutions(tiny_model):
    for key in ("unet", "vae"):
        convs = [m for m in tiny_model.components[key].modules() if isinstance(m, nn.Conv2d)]
        assert convs and all(type(m) is PrepackedConv2d for m in convs)


def test_prepacked_unet_matches_stock_and_keeps_its_weights(tiny_model):
    stock, packed, count = _stock_and_packed(tiny_model)
    assert count == sum(isinstance(m, nn.Conv2d) for m in stock.modules())
    sample, t, embeds = _unet_inputs()
    with torch.inference_mode():
        expected = stock(sample, t, encoder_hidden_states=embeds).sample
        got = packed(sample, t, encoder_hidden_states=embeds).sample
        again = packed(sample, t, encoder_hidden_states=embeds).sample  # from the cached weights
    assert (got - expected).abs().max() <= TOLERANCE
    assert torch.equal(got, again)
    stock_state, packed_state = stock.state_dict(), packed.state_dict()
    assert stock_state.keys() == packed_state.keys()
    assert all(torch.equal(stock_state[k], packed_state[k]) for k in stock_state)


def test_changed_weights_and_shapes_are_repacked(tiny_model):
    stock, packed, _ = _stock_and_packed(tiny_model)
    with torch.inference_mode():
        for shape in ((2, 8), (1, 16), (2, 8)):
            sample, t, embeds = _unet_inputs(*shape)
            packed(sample, t, encoder_hidden_states=embeds)
        # an in-place change (what merging a LoRA does) must reach the packed copy
        for network in (stock, packed):
            network.conv_in.weight.mul_(1.5)
        sample, t, embeds = _unet_inputs(1, 16)
        expected = stock(sample, t, encoder_hidden_states=embeds).sample
        got = packed(sample, t, encoder_hidden_states=embeds).sample
    assert (got - expected).abs().max() <= TOLERANCE


def test_copies_pickles_and_autograd_fall_back_cleanly():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    prepack_convolutions(conv)
    x = torch.randn(1, 3, 10, 10)
    with torch.inference_mode():
        expected = conv(x)  # fills the cache
    clone = copy.deepcopy(conv)
    restored = pickle.loads(pickle.dumps(conv))
    assert "_packed" not in clone.__dict__ and "_packed" not in restored.__dict__
    with torch.inference_mode():
        assert torch.equal(clone(x), expected) and torch.equal(restored(x), expected)
    out = conv(x.requires_grad_())  # grad mode: the stock path, which autograd can differentiate
    out.sum().backward()
    assert conv.weight.grad is not None


def test_unpack_restores_stock_convolutions():
    network = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 1, padding="same"), nn.Conv2d(4, 4, 3, padding_mode="reflect")
    )
    assert prepack_convolutions(network) == 1  # 'same' padding and reflect padding stay stock
    unpack_convolutions(network)
    assert all(type(m) is nn.Conv2d for m in network)


def test_linear_layers_run_on_onednn_and_compute_what_stock_ones_do(tiny_model):
    from dreamreel.models.prepack import OneDNNLinear, prepack_linears

    for key in ("unet", "vae", "text_encoder"):
        linears = [m for m in tiny_model.components[key].modules() if isinstance(m, nn.Linear)]
        assert linears and all(type(m) is OneDNNLinear for m in linears)
    stock = copy.deepcopy(tiny_model.components["unet"])
    unpack_convolutions(stock)
    assert not any(type(m) is OneDNNLinear for m in stock.modules())
    packed = copy.deepcopy(stock)
    assert prepack_linears(packed) > 0
    sample, timestep, embeds = _unet_inputs()
    with torch.no_grad():
        expected = stock(sample, timestep, encoder_hidden_states=embeds).sample
        got = packed(sample, timestep, encoder_hidden_states=embeds).sample
    assert (got - expected).abs().max().item() < TOLERANCE
