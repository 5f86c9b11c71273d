"""Training and generation speed of chibi_meta's GAN beside a plain DCGAN of the same widths.

    python bench/train_speed.py [--res 128] [--batch 32] [--steps 12] [--device auto]

Prints, for the current device: training images/s (one D step + one G step per batch, the full
chibi_meta step: NS loss + projection + auxiliary classifier,
lazy R1, DiffAugment, EMA), and generator images/s at batch 1 and 8.
The plain DCGAN baseline (BatchNorm + ReLU transposed convs, labels concatenated to z, BCE loss,
no R1, no augmentation, no EMA) is measured in the same run; compare the two as a ratio.
Figures are medians over the timed steps, after warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from chibi_meta.data.attributes import ADVENTURER
from chibi_meta.gan import augment, loss
from chibi_meta.gan.networks import Discriminator, Generator, NetConfig, count_params


class PlainG(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.g_channels
        n_lab = sum(cfg.attr_sizes)
        layers: list[nn.Module] = [nn.ConvTranspose2d(cfg.z_dim + n_lab, c[0], 4, 1, 0), nn.BatchNorm2d(c[0]),
                                   nn.ReLU(True)]
        for a, b in zip(c[:-1], c[1:], strict=True):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.Conv2d(c[-1], 4, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        onehot = torch.cat([F.one_hot(labels[:, i], n) for i, n in enumerate(self.cfg.attr_sizes)], 1).float()
        return self.net(torch.cat([z, onehot], 1)[:, :, None, None])


class PlainD(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        c = cfg.d_channels
        layers: list[nn.Module] = [nn.Conv2d(4, c[0], 3, 1, 1), nn.LeakyReLU(0.2, True)]
        for a, b in zip(c[:-1], c[1:], strict=True):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c[-1] * 16, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def _split(out: torch.Tensor | tuple) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """chibi_meta's D returns (score, aux logits); the plain one a score."""
    return (out[0].float(), out[1]) if isinstance(out, tuple) else (out.float(), [])


def _labels(n: int, dev: torch.device) -> torch.Tensor:
    return torch.stack([torch.randint(0, k, (n,)) for k in ADVENTURER.sizes], 1).to(dev)


def train_speed(G: nn.Module, D: nn.Module, full: bool, batch: int, steps: int, dev: torch.device,
                amp: bool) -> float:
    mf = torch.channels_last
    G.to(dev, memory_format=mf).train()
    D.to(dev, memory_format=mf).train()
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.99))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.99))
    ema = [p.detach().clone() for p in G.parameters()] if full else []
    ops = augment.parse_policy("translation,cutout") if full else ()
    res = G.cfg.resolution
    real = (torch.rand(batch, 4, res, res, device=dev) * 2 - 1).contiguous(memory_format=mf)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else torch.autocast("cpu", enabled=False)
    times = []
    for step in range(steps + 3):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        c = _labels(batch, dev)
        z = torch.randn(batch, G.cfg.z_dim, device=dev)
        with torch.no_grad(), ctx:
            fake = G(z, c).float()
        do_r1 = full and step % 16 == 0
        x = torch.cat([augment.augment(real, ops), augment.augment(fake, ops)])
        if do_r1:
            x = x.detach().requires_grad_(True)
        with ctx:
            logits, aux = _split(D(x, torch.cat([c, c])))
        l_d = loss.d_loss(logits[:batch], logits[batch:]) + loss.aux_loss([a[:batch] for a in aux], c)
        if do_r1:
            (g,) = torch.autograd.grad(logits[:batch].sum(), x, create_graph=True)
            l_d = l_d + g[:batch].square().sum((1, 2, 3)).mean() * 8
        od.zero_grad()
        l_d.backward()
        od.step()
        D.requires_grad_(False)
        with ctx:
            score, aux = _split(D(augment.augment(G(z, c).float(), ops), c))
            l_g = loss.g_loss(score) + loss.aux_loss(aux, c)
        og.zero_grad()
        l_g.backward()
        og.step()
        D.requires_grad_(True)
        if full:
            with torch.no_grad():
                for e, p in zip(ema, G.parameters(), strict=True):
                    e.lerp_(p, 0.01)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step >= 3:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


@torch.inference_mode()
def gen_speed(G: nn.Module, batch: int, dev: torch.device, reps: int = 20) -> float:
    G.eval()
    z = torch.randn(batch, G.cfg.z_dim, device=dev)
    c = _labels(batch, dev)
    times = []
    for i in range(reps + 3):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        G(z, c)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    amp = dev.type == "cuda"
    torch.set_flush_denormal(True)
    cfg = NetConfig.for_resolution(args.res, ADVENTURER.sizes)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"device: {name}; resolution {args.res}; batch {args.batch}; bf16 autocast: {amp}")
    print(f"{'model':<28}{'G params':>10}{'D params':>10}{'train img/s':>13}{'G b1 img/s':>12}{'G b8 img/s':>12}")
    for label, G, D, full in [("chibi_meta (NS+AC+R1+aug+EMA)", Generator(cfg), Discriminator(cfg), True),
                              ("plain DCGAN (BN, BCE)", PlainG(cfg), PlainD(cfg), False)]:
        tr = train_speed(G, D, full, args.batch, args.steps, dev, amp)
        g1, g8 = gen_speed(G, 1, dev), gen_speed(G, 8, dev)
        print(f"{label:<28}{count_params(G) / 1e6:>9.2f}M{count_params(D) / 1e6:>9.2f}M"
              f"{tr:>13.1f}{g1:>12.1f}{g8:>12.1f}")


if __name__ == "__main__":
    main()
