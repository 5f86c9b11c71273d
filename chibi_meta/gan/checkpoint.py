"""Safe model files: safetensors only, with JSON metadata; never pickle.

A file is checked before it is parsed: size cap, the 8-byte header length, a JSON header
under ``MAX_SAFETENSORS_HEADER``. Pickles (torch.save's zip or raw protocol) are recognised by
their magic bytes and refused with a message saying so. Optimizer states are flattened into
tensors plus a JSON skeleton, so training checkpoints are safetensors too.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch

from chibi_meta.atomic import atomic_write_bytes, atomic_write_text
from chibi_meta.errors import ModelError
from chibi_meta.limits import MAX_CHECKPOINT_BYTES, MAX_SAFETENSORS_HEADER

META_KEY = "chibi_meta"


def _sniff(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path}") from None
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror}") from None
    if size > MAX_CHECKPOINT_BYTES:
        raise ModelError(f"{path} is {size} bytes; the limit is {MAX_CHECKPOINT_BYTES} (MAX_CHECKPOINT_BYTES)")
    with open(path, "rb") as f:
        head = f.read(9)
    n = struct.unpack("<Q", head[:8])[0] if len(head) == 9 else -1
    if 0 < n <= MAX_SAFETENSORS_HEADER and n + 8 <= size and head[8:9] == b"{":
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise ModelError(f"{path} is a pickled (torch.save) file; only safetensors files are loaded, since "
                         "unpickling can run arbitrary code. Convert it where you trust it.")
    raise ModelError(f"{path} is not a valid safetensors file (header length {n}, file {size} bytes, "
                     f"header limit {MAX_SAFETENSORS_HEADER})")


def load(path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Load tensors and the chibi_meta JSON metadata from a safetensors file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    _sniff(path)
    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device=device) as f:
            raw = (f.metadata() or {}).get(META_KEY, "{}")
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
        meta = json.loads(raw)
    except (SafetensorError, ValueError, OSError, RuntimeError) as e:
        raise ModelError(f"{path} is corrupt or not a safetensors file: {e}") from None
    return tensors, meta


def save(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict, sidecar: bool = False) -> None:
    """Atomically write a safetensors file (and, if asked, ``<name>.json`` with the same metadata)."""
    from safetensors.torch import save as st_save

    data = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                   metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    path = Path(path)
    atomic_write_bytes(path, data)
    if sidecar:
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1, sort_keys=True) + "\n")


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def flatten_optimizer(prefix: str, state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """torch optimizer state_dict -> (tensors, JSON skeleton)."""
    tensors: dict[str, torch.Tensor] = {}
    skel_state: dict[str, dict] = {}
    for pid, st in state["state"].items():
        entry = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                key = f"{prefix}.{pid}.{k}"
                tensors[key] = v
                entry[k] = {"tensor": key}
            else:
                entry[k] = v
        skel_state[str(pid)] = entry
    return tensors, {"state": skel_state, "param_groups": state["param_groups"]}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], skel: dict) -> dict:
    state = {}
    for pid, entry in skel["state"].items():
        state[int(pid)] = {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                           for k, v in entry.items()}
    return {"state": state, "param_groups": skel["param_groups"]}
