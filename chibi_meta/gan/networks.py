"""Generator and discriminator networks.

Designed for quality per unit of CPU compute (see docs/gan.md for the measurements):

* Generator: z (128) and the attribute embeddings go through a 2-layer mapping MLP to a style
  vector w. A linear layer makes a 4x4 feature map; five 4x4/stride-2 transposed convolutions
  (cheapest upsampling per output pixel) double it to 128x128. After each, PixelNorm and a
  per-channel scale/shift predicted from w (batch-independent conditional normalisation, so
  batch size never changes the output), then LeakyReLU. A 3x3 conv gives RGBA through tanh.
  The widths shrink fast with resolution, so the 128 px stage costs about what a 64 px one does.
* Discriminator: the mirror, 4x4/stride-2 convolutions, and a projection head: the score is
  ``linear(h) + sum_a <embed_a(label_a), h>`` (Miyato & Koyama 2018, one term per attribute),
  plus an auxiliary classifier head per attribute (AC-GAN, Odena et al. 2017), trained on real
  images only; the generator is rewarded when its images are classified as asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class NetConfig:
    """Architecture options; saved beside every checkpoint and inside the shipped model."""

    resolution: int = 128
    z_dim: int = 128
    emb_dim: int = 32
    w_dim: int = 256
    g_channels: tuple[int, ...] = (256, 256, 128, 64, 32, 16)  # at 4, 8, 16, ..., resolution
    d_channels: tuple[int, ...] = (16, 32, 64, 128, 256, 256)  # at resolution, ..., 4
    attr_sizes: tuple[int, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = int(math.log2(self.resolution)) - 1
        if 2 ** (n + 1) != self.resolution or len(self.g_channels) != n or len(self.d_channels) != n:
            raise ValueError(f"resolution {self.resolution} needs {n} channel widths per network")

    @classmethod
    def for_resolution(cls, resolution: int, attr_sizes: Sequence[int] = (), **kw: object) -> NetConfig:
        """Default widths cut to ``resolution`` (32..128): G keeps its low-res end, D its high-res end."""
        n = int(math.log2(resolution)) - 1
        base = cls()
        g = kw.pop("g_channels", base.g_channels[:n])
        d = kw.pop("d_channels", base.d_channels[-n:])
        return cls(resolution=resolution, g_channels=tuple(g), d_channels=tuple(d),  # type: ignore[arg-type]
                   attr_sizes=tuple(attr_sizes), **kw)  # type: ignore[arg-type]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> NetConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class AttrEmbed(nn.Module):
    """One embedding table per attribute, concatenated."""

    def __init__(self, sizes: Sequence[int], dim: int) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n, dim) for n in sizes)
        self.out_dim = dim * len(sizes)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if not self.tables:
            return labels.new_zeros((labels.shape[0], 0), dtype=torch.float32)
        return torch.cat([t(labels[:, i]) for i, t in enumerate(self.tables)], dim=1)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, w_dim: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        self.affine = nn.Linear(w_dim, 2 * cout)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(self.conv(x))
        gamma, beta = self.affine(w)[:, :, None, None].chunk(2, dim=1)
        return F.leaky_relu(x * (1 + gamma) + beta, 0.2)


class Generator(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = AttrEmbed(cfg.attr_sizes, cfg.emb_dim)
        self.mapping = nn.Sequential(
            nn.Linear(cfg.z_dim + self.embed.out_dim, cfg.w_dim), nn.LeakyReLU(0.2),
            nn.Linear(cfg.w_dim, cfg.w_dim), nn.LeakyReLU(0.2),
        )
        c = cfg.g_channels
        self.input = nn.Linear(cfg.w_dim, c[0] * 16)
        self.blocks = nn.ModuleList(UpBlock(a, b, cfg.w_dim) for a, b in zip(c[:-1], c[1:], strict=True))
        self.to_rgba = nn.Conv2d(c[-1], 4, 3, 1, 1)

    def map(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z: (N, z_dim), labels: (N, A) int64 -> w (N, w_dim). z is normalised first, so its scale
        does not matter (truncation acts on w: ``chibi_meta.gan.api``)."""
        return self.mapping(torch.cat([pixel_norm(z), self.embed(labels)], dim=1))

    def synthesize(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim) -> (N, 4, R, R) RGBA in [-1, 1]."""
        x = F.leaky_relu(pixel_norm(self.input(w).view(w.shape[0], -1, 4, 4)), 0.2)
        for blk in self.blocks:
            x = blk(x, w)
        return torch.tanh(self.to_rgba(x))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z: (N, z_dim), labels: (N, A) int64 -> (N, 4, R, R) RGBA in [-1, 1]."""
        return self.synthesize(self.map(z, labels))


class Discriminator(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.d_channels
        self.from_rgba = nn.Conv2d(4, c[0], 3, 1, 1)
        self.blocks = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(c[:-1], c[1:], strict=True))
        self.fc = nn.Linear(c[-1] * 16, c[-1])
        self.out = nn.Linear(c[-1], 1)
        self.proj = AttrEmbed(cfg.attr_sizes, c[-1])
        self.aux = nn.ModuleList(nn.Linear(c[-1], n) for n in cfg.attr_sizes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgba(x), 0.2)
        for blk in self.blocks:
            x = F.leaky_relu(blk(x), 0.2)
        return F.leaky_relu(self.fc(x.flatten(1)), 0.2)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (N, 4, R, R) in [-1, 1], labels: (N, A) -> ((N,) real/fake logits, per-attribute class logits)."""
        h = self.features(x)
        score = self.out(h).squeeze(1)
        if self.proj.tables:
            e = self.proj(labels).view(h.shape[0], len(self.proj.tables), -1)
            score = score + (e * h[:, None, :]).sum(dim=(1, 2))
        return score, [head(h) for head in self.aux]


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
