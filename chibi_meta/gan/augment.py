"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) applied to real and fake alike.

Each op is differentiable, so the generator learns through it, and applied to every image the
discriminator sees, so it never leaks into generated images. Policies (comma-separated):

* ``translation``: shift by up to 1/8 of the size, zero-filled (transparent);
* ``cutout``: zero a random square of half the size;
* ``color``: brightness, saturation, contrast jitter on RGB (off by default: the built-in
  attributes are colours, and colour jitter would blur what "pink hair" means).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout", "color")


def parse_policy(policy: str) -> tuple[str, ...]:
    from chibi_meta.errors import UsageError

    ops = tuple(p for p in (s.strip() for s in policy.split(",")) if p)
    bad = [p for p in ops if p not in POLICIES]
    if bad:
        raise UsageError(f"unknown augmentation {bad[0]!r}; allowed: {', '.join(POLICIES)} (comma-separated)")
    return ops


def augment(x: torch.Tensor, ops: tuple[str, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    for op in ops:
        x = _OPS[op](x, generator)
    return x


def _rand(shape: tuple[int, ...], x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=g, device="cpu").to(x.device, x.dtype)


def _color(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    n = x.shape[0]
    rgb, a = x[:, :3], x[:, 3:]
    rgb = rgb + (_rand((n, 1, 1, 1), x, g) - 0.5) * 0.5
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * (_rand((n, 1, 1, 1), x, g) * 2) + mean
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (_rand((n, 1, 1, 1), x, g) + 0.5) + mean
    return torch.cat([rgb, a], dim=1)


def _translation(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1), generator=g).to(x.device)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1), generator=g).to(x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    # pad with -1 (transparent black in [-1, 1] space)
    xp = F.pad(x, [1, 1, 1, 1], value=-1.0)
    return xp.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def _cutout(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=g).to(x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=g).to(x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(ch, device=x.device), torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask[:, None] + (mask[:, None] - 1)  # cut region -> -1 (transparent black)


_OPS = {"translation": _translation, "cutout": _cutout, "color": _color}
