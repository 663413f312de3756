"""LoRA files merged into the model's weights (filled in below)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def parse_lora_specs(specs: Sequence[str], *, allow_unsafe_pickle: bool = False) -> list[Any]:
    return list(specs)


def apply_loras(components: dict[str, Any], specs: Sequence[Any]) -> list[Any]:
    raise NotImplementedError
