"""CPU convolutions with their weights reordered for oneDNN once, instead of on every call.

PyTorch's eager CPU convolution hands oneDNN plain NCHW weights, and oneDNN reorders them into its
blocked layout on every call. For SD 1.5's UNet at 256x256 that reorder is a large share of the
work: its 98 convolutions take 1.06 s per call eager and 0.65 s with weights reordered once
(measured on the project's 2-core Xeon, see benchmarks/RESULTS.md). The arithmetic is oneDNN's
same convolution; results agree with eager to float rounding (tests/test_prepack.py).

``prepack_convolutions`` switches every plain ``nn.Conv2d`` of a network to ``PrepackedConv2d``,
which keeps its parameters (state dicts, hashes, LoRA merges see the same weights) and caches one
reordered copy, rebuilt when the weights change in place or the input shape changes. It costs
that copy's memory: about +2 GB for SD 1.5's UNet in fp32. With autograd on, or for anything
oneDNN cannot take, a convolution runs the stock way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def prepack_available() -> bool:
    """oneDNN is built in and exposes the ops inductor uses for the same purpose."""
    ops = torch.ops.mkldnn
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_convolution_pointwise")
        and hasattr(ops, "_reorder_convolution_weight")
    )


class PrepackedConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that reorders its weight once per (weight version, input shape)."""

    _packed: tuple[tuple[Any, ...], torch.Tensor] | None = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or input.device.type != "cpu" or input.dtype != torch.float32:
            return super().forward(input)
        weight = self.weight
        key = (tuple(input.shape), weight._version, weight.data_ptr(), weight.dtype)
        if self._packed is None or self._packed[0] != key:
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                weight, self.padding, self.stride, self.dilation, self.groups, list(input.shape)
            )
            self._packed = (key, packed)
        return torch.ops.mkldnn._convolution_pointwise(
            input, self._packed[1], self.bias, self.padding, self.stride, self.dilation, self.groups,
            "none", [], "",
        )  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        # deepcopy/pickle: the cache is a derived oneDNN tensor; a copy rebuilds its own
        state = dict(self.__dict__)
        state.pop("_packed", None)
        return state


class OneDNNLinear(nn.Linear):
    """An ``nn.Linear`` whose CPU fp32 inference product runs on oneDNN instead of the BLAS library.

    PyTorch's CPU wheels send ``F.linear`` to MKL, which on AMD CPUs takes a slow path: on the project's
    2-core AMD EPYC, SD 1.5's UNet linear shapes ran 1.2-2.2x faster through oneDNN's matmul
    (benchmarks/RESULTS.md), and linear layers are a third of the UNet's time there. Same parameters,
    same arithmetic; results agree with MKL's to float rounding (a differently ordered sum).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or input.device.type != "cpu" or input.dtype != torch.float32:
            return super().forward(input)
        if self.weight.dtype != torch.float32 or self.weight.device.type != "cpu":
            return super().forward(input)
        return torch.ops.mkldnn._linear_pointwise(input, self.weight, self.bias, "none", [], "")


def prepack_linears(network: nn.Module) -> int:
    """Switch ``network``'s plain ``nn.Linear`` modules to ``OneDNNLinear``; returns how many."""
    if not prepack_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return 0
    count = 0
    for module in network.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDNNLinear
            count += 1
    return count


def _packable(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and conv.weight.dtype == torch.float32
    )


def prepack_convolutions(network: nn.Module) -> int:
    """Switch ``network``'s plain fp32 ``nn.Conv2d`` modules to ``PrepackedConv2d``; returns how many."""
    if not prepack_available():
        return 0
    count = 0
    for module in network.modules():
        if _packable(module):
            module.__class__ = PrepackedConv2d
            count += 1
    return count


def unpack_convolutions(network: nn.Module) -> None:
    """Back to stock ``nn.Conv2d`` and ``nn.Linear`` (before moving to a GPU or compiling), dropping
    the caches."""
    for module in network.modules():
        if type(module) is PrepackedConv2d:
            module.__dict__.pop("_packed", None)
            module.__class__ = nn.Conv2d  # type: ignore[assignment]
        elif type(module) is OneDNNLinear:
            module.__class__ = nn.Linear  # type: ignore[assignment]
