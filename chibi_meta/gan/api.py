"""Generation API: load a trained generator and turn seeds + attributes into RGBA textures.

    from chibi_meta import TextureGenerator
    gen = TextureGenerator.load()                       # the shipped model in assets/model/
    imgs = gen.generate([1, 2], [{"hair_color": "pink"}, {}])   # (2, 128, 128, 4) uint8

A seed fixes both the latent z and the attributes that a request leaves out, so changing one
attribute of a seed keeps the rest of that avatar. Rows are generated in fixed-size chunks,
so a row's pixels do not depend on what else is in the batch (the bridge batches requests from
many clients together and caches by request).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chibi_meta.data.attributes import AttributeSchema, check_seed
from chibi_meta.errors import AttributeValueError, ModelError
from chibi_meta.gan import checkpoint
from chibi_meta.gan.networks import Generator, NetConfig, pixel_norm
from chibi_meta.limits import MAX_TRUNCATION

log = logging.getLogger(__name__)
FORMAT = "chibi-meta-generator/1"
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "assets" / "model" / "generator.safetensors"
TRUNCATION_SAMPLES = 64  # fixed latents whose mean w (per attribute set) truncation pulls toward
CHUNK = 4  # rows per forward pass; fixed so that outputs are batch-independent (4: a lone request
# costs a pass of 4, ~15 ms on 2 cores, while batches of 16-32 keep ~95 % of the throughput of 8)
REGION_CHUNK = 12  # rows per pass of generate_regions: one face sheet's 10 variants in one pass. Its
# low-resolution blocks run on the whole image with 256 channels, and at 4 rows their small matrix
# products dominate: 12 rows cost 23 ms per avatar's sheet against 32 ms at 4 (batches of 32 sheets,
# 2 cores), a lone sheet 25 against 35 ms; the pixels are the same


def default_model_path() -> Path:
    """``$CHIBI_META_MODEL`` if set, else the model shipped in assets/model/."""
    return Path(os.environ.get("CHIBI_META_MODEL") or DEFAULT_MODEL)


def latent(seed: int, z_dim: int) -> torch.Tensor:
    """The latent vector of a seed: standard normal from a CPU generator seeded with it."""
    g = torch.Generator().manual_seed(check_seed(seed))
    return torch.randn(z_dim, generator=g)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 4, R, R) in [-1, 1] -> (N, R, R, 4) uint8; colour under alpha 0 is cleared."""
    img = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    img[..., :3][img[..., 3] == 0] = 0
    return np.ascontiguousarray(img)


class TextureGenerator:
    """A loaded generator with its attribute schema and provenance."""

    def __init__(self, G: Generator, schema: AttributeSchema, meta: dict, model_id: str, device: str = "cpu"):
        self.G = G.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
        self.schema = schema
        self.meta = meta
        self.model_id = model_id
        self.device = device
        self._lock = threading.Lock()
        self._w_latents: torch.Tensor | None = None

    @property
    def resolution(self) -> int:
        return self.G.cfg.resolution

    @property
    def attribution(self) -> str:
        return str(self.meta.get("attribution", ""))

    @property
    def license_url(self) -> str:
        """The licence of the training data, which the outputs inherit."""
        return str(self.meta.get("license_url", ""))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str = "cpu") -> TextureGenerator:
        path = Path(path) if path else default_model_path()
        tensors, meta = checkpoint.load(path)
        if meta.get("format") != FORMAT:
            raise ModelError(f"{path} is not a chibi_meta generator (format {meta.get('format')!r}, "
                             f"expected {FORMAT!r}); training checkpoints are exported with `chibi-meta train`")
        try:
            cfg = NetConfig.from_json(meta["net"])
            schema = AttributeSchema.from_json(meta["schema"])
            G = Generator(cfg)
            G.load_state_dict({k: v.float() for k, v in tensors.items()})
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ModelError(f"{path} does not match this version's generator: {str(e).splitlines()[0]}") from None
        model_id = "chibi-" + _file_sha256(path)[:12]
        # Tiny trained weights produce denormal activations that are ~50 % slower on x86 CPUs.
        torch.set_flush_denormal(True)
        log.info("loaded generator %s (%s) from %s", model_id, meta.get("name", "?"), path)
        return cls(G, schema, meta, model_id, device)

    def resolve(self, seed: int, attrs: Mapping[str, object] | None = None) -> dict[str, str]:
        """Validate ``attrs`` and fill in the missing ones from the data's distribution (by seed)."""
        return self.schema.resolve(seed, attrs)

    def generate(
        self,
        seeds: Sequence[int],
        attrs_list: Sequence[Mapping[str, object] | None] | None = None,
        truncation: float = 1.0,
    ) -> np.ndarray:
        """(N, R, R, 4) uint8 RGBA textures, one per seed; attributes may be partial or None."""
        if attrs_list is None:
            attrs_list = [None] * len(seeds)
        if len(attrs_list) != len(seeds):
            raise AttributeValueError(f"got {len(seeds)} seeds but {len(attrs_list)} attribute sets")
        labels = torch.tensor([self.schema.encode(self.resolve(s, a)) for s, a in zip(seeds, attrs_list, strict=True)],
                              dtype=torch.long).reshape(len(seeds), len(self.schema.attributes))
        z = torch.stack([latent(s, self.G.cfg.z_dim) for s in seeds]) if len(seeds) else torch.zeros(0, 1)
        return self.generate_latents(z, labels, truncation)

    def generate_latents(self, z: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0) -> np.ndarray:
        """Generate from explicit latents (N, z_dim) and class indices (N, A)."""
        check_truncation(truncation)
        n = z.shape[0]
        if n == 0:
            r = self.resolution
            return np.zeros((0, r, r, 4), np.uint8)
        pad = (-n) % CHUNK
        z = torch.cat([z, z.new_zeros(pad, z.shape[1])])
        labels = torch.cat([labels, labels.new_zeros(pad, labels.shape[1])])
        outs = []
        with self._lock, torch.inference_mode():
            for i in range(0, n + pad, CHUNK):
                w = self._w(z[i:i + CHUNK].to(self.device), labels[i:i + CHUNK].to(self.device), truncation)
                outs.append(self.G.synthesize(w))
        return to_uint8(torch.cat(outs)[:n])

    def _w(self, z: torch.Tensor, labels: torch.Tensor, truncation: float) -> torch.Tensor:
        """w of each row, truncated toward the mean w of its own labels: w_mean + psi (w - w_mean),
        w_mean averaged over TRUNCATION_SAMPLES fixed latents (the same for every request), so psi 0
        is the average face of those attributes, 1 the latent as drawn, > 1 exaggerates it."""
        w = self.G.map(z, labels)
        if truncation == 1.0:
            return w
        k = TRUNCATION_SAMPLES
        if self._w_latents is None or self._w_latents.device != z.device:
            g = torch.Generator().manual_seed(0)
            self._w_latents = torch.randn(k, self.G.cfg.z_dim, generator=g).to(z.device)
        zs = self._w_latents.repeat(len(z), 1)
        mean = self.G.map(zs, labels.repeat_interleave(k, 0)).view(len(z), k, -1).mean(1)
        return mean + truncation * (w - mean)

    def generate_regions(
        self,
        seeds: Sequence[int],
        attrs_list: Sequence[Mapping[str, object] | None],
        overrides: Sequence[Mapping[str, str]],
        box: tuple[int, int, int, int],
        truncation: float = 1.0,
    ) -> np.ndarray:
        """(N, V, y1-y0, x1-x0, 4) uint8: the pixels in ``box`` = (y0, y1, x0, x1) of each seed drawn
        with each attribute override (e.g. {"eyes": "eyes20"}), the rest of its attributes kept.

        The generator is spatially local after its 4x4 input (transposed convolutions, per-pixel
        norms, per-channel modulation), so only its low-resolution blocks run on the whole image and
        the rest on a crop around ``box``: the result equals the same pixels of ``generate`` (up to
        float rounding). ``region_crop`` says how much of the image the crop is.
        """
        check_truncation(truncation)
        n, v = len(seeds), len(overrides)
        r = self.resolution
        if n == 0 or v == 0:
            return np.zeros((n, v, box[1] - box[0], box[3] - box[2], 4), np.uint8)
        rows = []
        for s, a in zip(seeds, attrs_list, strict=True):
            base = self.resolve(s, a)
            rows += [self.schema.encode(self.resolve(s, {**base, **o})) for o in overrides]
        labels = torch.tensor(rows, dtype=torch.long)
        z = torch.stack([latent(s, self.G.cfg.z_dim) for s in seeds]).repeat_interleave(v, 0)
        k, crop = self.region_crop(box)
        m = n * v
        pad = (-m) % REGION_CHUNK
        z = torch.cat([z, z.new_zeros(pad, z.shape[1])])
        labels = torch.cat([labels, labels.new_zeros(pad, labels.shape[1])])
        outs = []
        G = self.G
        with self._lock, torch.inference_mode():
            for i in range(0, m + pad, REGION_CHUNK):
                zz, ll = z[i:i + REGION_CHUNK].to(self.device), labels[i:i + REGION_CHUNK].to(self.device)
                w = self._w(zz, ll, truncation)
                x = F.leaky_relu(pixel_norm(G.input(w).view(zz.shape[0], -1, 4, 4)), 0.2)
                for blk in G.blocks[:k]:
                    x = blk(x, w)
                a0, a1, b0, b1 = crop
                x = x[:, :, a0:a1, b0:b1].contiguous(memory_format=torch.channels_last)
                for blk in G.blocks[k:]:
                    x = blk(x, w)
                outs.append(torch.tanh(G.to_rgba(x)))
        f = r // (4 * 2 ** k)  # crop cells -> output pixels
        y0, y1, x0, x1 = box
        out = torch.cat(outs)[:m, :, y0 - crop[0] * f : y1 - crop[0] * f, x0 - crop[2] * f : x1 - crop[2] * f]
        return to_uint8(out).reshape(n, v, y1 - y0, x1 - x0, 4)

    def region_crop(self, box: tuple[int, int, int, int],
                    blocks_full: int = 2) -> tuple[int, tuple[int, int, int, int]]:  # fmt: skip
        """(blocks run on the whole image, crop (rows a0:a1, cols b0:b1) of their output) for ``box``.

        A 4x4 stride-2 transposed convolution's output pixel o depends on inputs (o-2)/2 .. (o+1)/2,
        so each finer block loses about a pixel of valid border per side, and the final 3x3 one more.
        """
        k = min(blocks_full, len(self.G.blocks))
        res = 4 * 2**k
        f = self.resolution // res
        y0, y1, x0, x1 = box
        if not (0 <= y0 < y1 <= self.resolution and 0 <= x0 < x1 <= self.resolution):
            raise AttributeValueError(f"region {box} is not inside the {self.resolution} px image")
        margin = 2 * len(self.G.blocks[k:]) + 2  # output pixels, generously
        a0, b0 = max(0, (y0 - margin) // f), max(0, (x0 - margin) // f)
        a1, b1 = min(res, -(-(y1 + margin) // f)), min(res, -(-(x1 + margin) // f))
        return k, (a0, a1, b0, b1)

    def interpolate(self, seed_a: int, seed_b: int, steps: int, attrs: Mapping[str, object] | None = None,
                    truncation: float = 1.0) -> np.ndarray:
        """``steps`` textures along the spherical path between two seeds' latents, attributes fixed
        (``attrs`` completed from ``seed_a``)."""
        if not 2 <= steps <= 256:
            raise AttributeValueError(f"interpolation steps must be in [2, 256], got {steps}")
        za, zb = latent(seed_a, self.G.cfg.z_dim), latent(seed_b, self.G.cfg.z_dim)
        t = torch.linspace(0, 1, steps)[:, None]
        z = slerp(za[None], zb[None], t)
        lab = torch.tensor([self.schema.encode(self.resolve(seed_a, attrs))] * steps, dtype=torch.long)
        return self.generate_latents(z, lab, truncation)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def check_truncation(t: object) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= float(t) <= MAX_TRUNCATION:
        raise AttributeValueError(f"truncation must be a number in [0, {MAX_TRUNCATION}], got {t!r}")
    return float(t)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_generator(path: str | os.PathLike, G: Generator, schema: AttributeSchema, info: dict,
                     half: bool = True) -> None:
    """Write the shippable generator: EMA weights (fp16 by default) and everything needed to use them."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in G.state_dict().items()}
    meta = {"format": FORMAT, "net": G.cfg.to_json(), "schema": schema.to_json(), **info}
    checkpoint.save(path, state, meta)
