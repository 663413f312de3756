"""Weight files are judged by their CONTENT before anything reads them as weights.

A pickle (``.ckpt``/``.pt``/``.bin``, torch's zip format, or one renamed ``.safetensors``) can run
any code when it is unpickled, so it is refused with the reason and a conversion command; the only
way in is ``--allow-unsafe-pickle``, which still goes through ``torch.load(weights_only=True)``
and only on torch >= 2.6 (older ``weights_only`` could be bypassed: CVE-2025-32434). Safetensors
files get their header checked (length, JSON, offsets) so a truncated download, a git-lfs pointer
or an empty file fails with its own one-line message instead of a deep library error.

Nothing here imports torch except the one function that loads a pickle on explicit request.
"""

from __future__ import annotations

import json
import pickletools
import struct
import zipfile
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
# The safetensors library itself refuses headers above 100 MB.
MAX_HEADER_BYTES = 100_000_000
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
MIN_SAFE_TORCH = (2, 6)

SAFETENSORS = "safetensors"
PICKLE = "pickle"


def convert_hint(path: str | Path) -> str:
    target = Path(path).with_suffix(".safetensors").name
    return (
        'convert it once on a trusted machine, e.g. python -c "import torch, safetensors.torch as s; '
        f"d = torch.load('{Path(path).name}', weights_only=True); d = d.get('state_dict', d); "
        f"s.save_file({{k: v.contiguous() for k, v in d.items() if hasattr(v, 'contiguous')}}, '{target}')\""
    )


def pickle_refusal(path: str | Path, why: str) -> DreamreelError:
    return DreamreelError(
        f"{str(path)!r} is {why}: unpickling can run any code hidden in the file, so dreamreel does not "
        f"load it. Prefer a .safetensors version of the model, or {convert_hint(path)}; "
        "or, if you trust the file, pass --allow-unsafe-pickle (torch.load with weights_only=True)"
    )


def looks_like_pickle(head: bytes) -> bool:
    """True for a pickle stream: protocol 2+ starts with 0x80 <protocol>; protocols 0/1 are
    recognised by parsing (never executing) their first opcodes with pickletools."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if not head or head[:1] not in (b"(", b"c", b"}", b"]", b"i", b"\x8c"):
        return False
    try:
        for count, _ in enumerate(pickletools.genops(head), start=1):
            if count >= 3:
                return True
    except Exception:  # any parse failure: not a pickle stream we recognise
        return False
    return False


def zip_pickle_member(path: Path) -> str | None:
    """The first ``.pkl`` member of a zip (torch.save's format), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(".pkl"):
                    return name
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return None


def classify_weights_file(path: str | Path, what: str = "weights file") -> str:
    """Return SAFETENSORS or PICKLE for a weights file, or raise a one-line DreamreelError.

    Reads only the first bytes and, for safetensors, the header: cheap enough for validation.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise DreamreelError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from exc
    if size == 0:
        raise DreamreelError(f"{what} {str(path)!r} is empty (0 bytes): the download or copy did not finish")
    if head.startswith(LFS_POINTER_PREFIX):
        raise DreamreelError(
            f"{what} {str(path)!r} is a git-lfs pointer ({size} bytes), not the weights: "
            "run `git lfs pull` in its repository, or download the file itself"
        )
    if looks_like_pickle(head):
        return PICKLE
    if head.startswith(b"PK\x03\x04"):
        member = zip_pickle_member(path)
        if member is not None:
            return PICKLE
        raise DreamreelError(f"{what} {str(path)!r} is a zip archive without model weights in it")
    check_safetensors_header(path, head, size, what)
    return SAFETENSORS


def check_safetensors_header(path: Path, head: bytes, size: int, what: str = "weights file") -> None:
    """Validate a safetensors header: length, JSON, and every tensor's byte range within the file."""
    name = str(path)
    if size < 8:
        raise DreamreelError(f"{what} {name!r} is only {size} bytes: truncated, not a safetensors file")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > MAX_HEADER_BYTES or (head[8:9] and head[8:9] != b"{"):
        raise DreamreelError(
            f"{what} {name!r} is neither safetensors nor a known weights format "
            "(its first bytes are not a safetensors header)"
        )
    if 8 + header_len > size:
        raise DreamreelError(
            f"{what} {name!r} is truncated: its safetensors header claims {header_len} bytes "
            f"but the file has {size - 8} after the length field"
        )
    with path.open("rb") as handle:
        handle.seek(8)
        raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        raise DreamreelError(f"{what} {name!r} is corrupt: its safetensors header is not valid JSON") from exc
    data_size = size - 8 - header_len
    end_max = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            begin, end = (int(x) for x in info["data_offsets"])
            count = 1
            for dim in info["shape"]:
                count *= int(dim)
            expected = count * DTYPE_BYTES.get(info["dtype"], 0)
        except (KeyError, TypeError, ValueError) as exc:
            raise DreamreelError(f"{what} {name!r} is corrupt: bad header entry for tensor {key!r}") from exc
        if end > data_size:
            raise DreamreelError(
                f"{what} {name!r} is truncated: tensor {key!r} ends at byte {end} of the data, "
                f"but only {data_size} bytes are there (an interrupted download?)"
            )
        if begin > end or (info["dtype"] in DTYPE_BYTES and end - begin != expected):
            raise DreamreelError(f"{what} {name!r} is corrupt: tensor {key!r} has inconsistent offsets")
        end_max = max(end_max, end)
    if end_max != data_size:
        raise DreamreelError(
            f"{what} {name!r} is corrupt: the header describes {end_max} data bytes, "
            f"the file holds {data_size}"
        )


def safetensors_keys(path: str | Path) -> dict[str, list[int]]:
    """Tensor names and shapes from a (checked) safetensors header, without reading the tensors."""
    with Path(path).open("rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_len))
    return {k: list(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def check_weights_file(
    path: str | Path, *, allow_unsafe_pickle: bool = False, what: str = "weights file"
) -> str:
    """Classify a file and refuse pickles unless explicitly allowed (and torch is new enough)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DreamreelError(f"{what} {str(path)!r} does not exist")
    if not path.is_file():
        raise DreamreelError(f"{what} {str(path)!r} is not a file")
    kind = classify_weights_file(path, what)
    if kind == PICKLE:
        why = (
            "a pickle"
            if path.suffix.lower() in (".ckpt", ".pt", ".pth", ".bin", ".pkl")
            else (f"a pickle despite its {path.suffix or 'missing'} extension")
        )
        if not allow_unsafe_pickle:
            raise pickle_refusal(path, why)
        check_torch_for_pickles()
    return kind


def check_torch_for_pickles() -> None:
    import torch

    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    if version < MIN_SAFE_TORCH:
        raise DreamreelError(
            f"--allow-unsafe-pickle needs torch >= 2.6 (torch.load's weights_only guard could be bypassed "
            f"before, CVE-2025-32434); this is torch {torch.__version__}"
        )


def load_pickle_weights(path: str | Path) -> dict[str, Any]:
    """torch.load(weights_only=True): tensors and plain containers only, never arbitrary objects."""
    import pickle

    import torch

    check_torch_for_pickles()
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DreamreelError(
            f"{str(path)!r} could not be loaded even with weights_only=True (it holds more than tensors, "
            f"which is exactly what a malicious file would do): {first}"
        ) from exc
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise DreamreelError(f"{str(path)!r} does not hold a dictionary of tensors")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def load_weights(path: str | Path, *, allow_unsafe_pickle: bool = False) -> dict[str, Any]:
    """A state dict from a checked safetensors file, or from a pickle when explicitly allowed."""
    kind = check_weights_file(path, allow_unsafe_pickle=allow_unsafe_pickle)
    if kind == PICKLE:
        return load_pickle_weights(path)
    from safetensors.torch import load_file

    return load_file(str(Path(path).expanduser()))


def component_folder_config(folder: Path, spec: str, class_name: str, what: str) -> dict[str, Any]:
    """A diffusers component folder (a ControlNet, a motion adapter): its config.json, which must name
    ``class_name``, and safetensors weights, each checked like any weights file; headers only."""
    config = folder / "config.json"
    if not config.is_file():
        raise DreamreelError(f"{what} folder {spec!r} has no config.json")
    data = json.loads(config.read_text(encoding="utf-8"))
    if data.get("_class_name") != class_name:
        raise DreamreelError(f"{spec!r} is not a {what} folder (it holds a {data.get('_class_name')})")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise DreamreelError(f"{what} folder {spec!r} has no .safetensors weights")
    for file in weights:
        check_weights_file(file, what=f"{what} file")
    return dict(data)
