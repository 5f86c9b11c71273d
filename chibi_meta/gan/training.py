"""The training loop: conditional GAN, NS loss + lazy R1, DiffAugment, EMA generator, DDP.

One process per device (``torchrun --nproc_per_node N`` for several GPUs; gloo works on the CPU).
Rank 0 writes everything under the run folder:

  options.json                 the options of the run (written at the start, kept on resume)
  checkpoint.safetensors/.json G, D, G_ema, both optimizers, step, RNG state, dataset fingerprint
  generator.safetensors        the EMA generator, ready for `chibi-meta generate --model`
  samples/kimg-NNNNN.png       8x8 grids of fixed seeds; tb/ TensorBoard scalars and grids
  metrics.jsonl                periodic metrics (once a classifier exists for the dataset)

Every write is atomic; ``--resume`` restarts from the last checkpoint, losing at most the steps
since it (checkpoints every ``snapshot_minutes``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from chibi_meta.atomic import atomic_write_text, atomic_writer
from chibi_meta.data.store import Dataset, load_dataset
from chibi_meta.errors import DataError, MissingDependency, UsageError
from chibi_meta.gan import augment, checkpoint, loss
from chibi_meta.gan.api import export_generator
from chibi_meta.gan.networks import Discriminator, Generator, NetConfig, count_params

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    data: str
    out: str
    minutes: float | None = None
    kimg: float | None = None
    batch: int = 32
    lr_g: float = 0.0002
    lr_d: float = 0.0002
    betas: tuple[float, float] = (0.5, 0.99)
    r1_gamma: float = 1.0
    r1_every: int = 16
    aux_weight: float = 1.0
    balanced_g_labels: bool = False
    balanced_aux: bool = False
    aug: str = "translation,cutout"
    ema_kimg: float = 10.0
    ema_rampup: float = 0.05
    snapshot_minutes: float = 5.0
    metrics_minutes: float = 15.0
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    tensorboard: bool = True
    progress: bool = True
    net: dict = field(default_factory=dict)
    init_generator: str | None = None  # a fresh run starts G and G_ema from this generator file
    freeze_g_kimg: float = 0.0  # G is not updated for this long (D warms up on a trained G)
    d_classify_kimg: float = 0.0  # first, D trains only its attribute heads on real images this long

    def validate(self) -> None:
        if self.minutes is None and self.kimg is None:
            raise UsageError("give --minutes M or --kimg K (how long to train)")
        for name in ("minutes", "kimg"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise UsageError(f"--{name} must be > 0, got {v}")
        if self.batch < 2 or self.batch > 4096:
            raise UsageError(f"--batch must be in [2, 4096], got {self.batch}")
        if not 0 <= self.freeze_g_kimg < 1e6:
            raise UsageError(f"--freeze-g-kimg must be in [0, 1e6), got {self.freeze_g_kimg}")
        if not 0 <= self.d_classify_kimg <= self.freeze_g_kimg:
            raise UsageError(f"--d-classify-kimg must be in [0, --freeze-g-kimg = {self.freeze_g_kimg}], "
                             f"got {self.d_classify_kimg}")  # fmt: skip
        if self.init_generator is not None and not Path(self.init_generator).is_file():
            raise UsageError(f"--init-generator {self.init_generator}: no such file")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("--device cuda asked for, but no CUDA device is available; use --device cpu")
        augment.parse_policy(self.aug)


def pick_device(opt: TrainOptions, local_rank: int) -> torch.device:
    if opt.device == "cuda" or (opt.device == "auto" and torch.cuda.is_available()):
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


class Trainer:
    """Holds the networks, optimizers and counters; ``run()`` trains until the budget is spent."""

    def __init__(self, opt: TrainOptions, resume: bool = False) -> None:
        opt.validate()
        self.opt = opt
        self.out = Path(opt.out)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = pick_device(opt, local_rank)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if opt.threads:
            torch.set_num_threads(opt.threads)
        if opt.batch % self.world:
            raise UsageError(f"--batch {opt.batch} must be divisible by the number of processes ({self.world})")
        self.ds: Dataset = load_dataset(opt.data)
        cfg = NetConfig.for_resolution(self.ds.size, self.ds.schema.sizes, **opt.net)
        torch.manual_seed(opt.seed)  # same init on every rank
        mf = torch.channels_last
        self.G = Generator(cfg).to(self.device, memory_format=mf)
        self.D = Discriminator(cfg).to(self.device, memory_format=mf)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=opt.lr_g, betas=opt.betas, eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=opt.lr_d, betas=opt.betas, eps=1e-8)
        self.aug_ops = augment.parse_policy(opt.aug)
        self.step = 0
        self.nimg = 0
        self.elapsed = 0.0  # training seconds over all segments
        self._saved_step: int | None = None  # the step of the last checkpoint written
        self.images = torch.from_numpy(self.ds.images)  # uint8 NHWC, stays on the CPU
        self.labels = torch.from_numpy(self.ds.labels)
        self.rng = torch.Generator().manual_seed(opt.seed * 1000 + self.rank)
        self.aux_class_weights = None
        if opt.balanced_aux:
            weights = loss.inverse_frequency_weights(self.labels, self.ds.schema.sizes)
            self.aux_class_weights = [w.to(self.device) for w in weights]
        if resume:
            self._load()
        elif self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            if (self.out / "checkpoint.safetensors").exists():
                raise UsageError(f"{self.out} already holds a run; pass --resume to continue it or choose a new --out")
            atomic_write_text(self.out / "options.json", json.dumps(asdict(opt), indent=1, sort_keys=True) + "\n")
        if not resume and opt.init_generator:
            self._init_generator(Path(opt.init_generator))
        if not resume and opt.d_classify_kimg > 0:
            # The real/fake heads start at zero, so that when the game begins they first learn on top
            # of the attribute features instead of sending random gradients through them.
            with torch.no_grad():
                self.D.out.weight.zero_()
                self.D.out.bias.zero_()
                for table in self.D.proj.tables:
                    table.weight.zero_()
        self.G_ddp = DDP(self.G) if self.world > 1 else self.G
        self.D_ddp = DDP(self.D) if self.world > 1 else self.D
        self.amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else None
        self.grid_z = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(123))
        self.grid_c = self.labels[torch.randint(0, len(self.labels), (64,), generator=torch.Generator().manual_seed(7))]
        log.info("G %.2fM params, D %.2fM params, %d images, device %s, world %d",
                 count_params(self.G) / 1e6, count_params(self.D) / 1e6, len(self.ds), self.device, self.world)

    def _init_generator(self, path: Path) -> None:
        """Fine-tuning: G and G_ema start from a generator file (its EMA weights) of the same
        network and attributes; D, the optimizers and the counters start fresh."""
        from chibi_meta.gan.api import TextureGenerator

        src = TextureGenerator.load(path)
        if src.G.cfg.to_json() != self.G.cfg.to_json():
            raise UsageError(f"--init-generator {path}: its network {src.G.cfg.to_json()} differs from this "
                             f"run's {self.G.cfg.to_json()} (same --net and dataset size needed)")  # fmt: skip
        if src.schema.to_json() != self.ds.schema.to_json():
            raise UsageError(f"--init-generator {path}: its attributes differ from the dataset's "
                             f"({', '.join(src.schema.names)} vs {', '.join(self.ds.schema.names)})")  # fmt: skip
        state = src.G.state_dict()
        self.G.load_state_dict(state)
        self.G_ema.load_state_dict(state)
        log.info("G and G_ema start from %s (%s)", path, src.model_id)

    # -- data --------------------------------------------------------------------------------
    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.images), (n,), generator=self.rng)
        x = self.images[idx].to(self.device, non_blocking=True).permute(0, 3, 1, 2).float() / 127.5 - 1
        return x.contiguous(memory_format=torch.channels_last), self.labels[idx].to(self.device)

    def fake_labels(self, n: int) -> torch.Tensor:
        """Labels for fakes: drawn from the real data's (joint) label distribution."""
        return self.labels[torch.randint(0, len(self.labels), (n,), generator=self.rng)].to(self.device)

    def uniform_labels(self, n: int) -> torch.Tensor:
        """Labels with every attribute uniform over its values (rare values as often as common ones)."""
        cols = [torch.randint(0, k, (n,), generator=self.rng) for k in self.ds.schema.sizes]
        return torch.stack(cols, 1).to(self.device) if cols else self.fake_labels(n)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return self.amp if self.amp is not None else contextlib.nullcontext()

    # -- one step ----------------------------------------------------------------------------
    def classify_step(self) -> dict[str, float]:
        """D's attribute heads (and its features) on augmented real images only. A fresh D beside a
        trained G (fine-tuning) learns nothing in the full game: it cannot tell the fakes apart, and
        that game pulls its features off the attributes (docs/gan.md, "Fine-tuning")."""
        real, c_real = self.batch(self.opt.batch // self.world)
        _, aux = self.D_ddp(augment.augment(real, self.aug_ops, self.rng), c_real)
        l_aux = loss.aux_loss(aux, c_real, self.aux_class_weights)
        self.opt_d.zero_grad(set_to_none=True)
        l_aux.backward()
        self.opt_d.step()
        self.step += 1
        self.nimg += self.opt.batch
        return {"loss/D_aux": float(l_aux.detach())}

    def train_step(self) -> dict[str, float]:
        if self.nimg < self.opt.d_classify_kimg * 1000:
            return self.classify_step()
        n = self.opt.batch // self.world
        zdim = self.G.cfg.z_dim
        stats = {}
        # D step: one forward over [real; fake] (a single DDP forward per backward).
        real, c_real = self.batch(n)
        c_fake = self.fake_labels(n)
        z = torch.randn(n, zdim, generator=self.rng).to(self.device)
        with torch.no_grad(), self._autocast():
            fake = self.G(z, c_fake).float()
        do_r1 = self.opt.r1_gamma > 0 and self.step % self.opt.r1_every == 0
        x = torch.cat([augment.augment(real, self.aug_ops, self.rng), augment.augment(fake, self.aug_ops, self.rng)])
        if do_r1:
            x = x.detach().requires_grad_(True)
        with (contextlib.nullcontext() if do_r1 else self._autocast()):
            logits, aux = self.D_ddp(x, torch.cat([c_real, c_fake]))
            logits = logits.float()
        l_d = loss.d_loss(logits[:n], logits[n:])
        l_aux = loss.aux_loss([a[:n] for a in aux], c_real, self.aux_class_weights)
        total = l_d + self.opt.aux_weight * l_aux
        stats["loss/D_aux"] = float(l_aux.detach())
        if do_r1:
            (grad,) = torch.autograd.grad(logits[:n].sum(), x, create_graph=True)
            r1 = grad[:n].square().sum(dim=(1, 2, 3)).mean()
            total = total + r1 * (self.opt.r1_gamma / 2 * self.opt.r1_every)
            stats["loss/r1"] = float(r1.detach())
        self.opt_d.zero_grad(set_to_none=True)
        total.backward()
        self.opt_d.step()
        stats["loss/D"] = float(l_d.detach())
        stats["D/real"] = float(logits[:n].detach().mean())
        stats["D/fake"] = float(logits[n:].detach().mean())
        self.step += 1
        self.nimg += self.opt.batch
        if self.nimg <= self.opt.freeze_g_kimg * 1000:  # D warms up on the trained G first
            return stats
        # G step: gradients reach G through the (unwrapped, frozen) D.
        c = self.uniform_labels(n) if self.opt.balanced_g_labels else self.fake_labels(n)
        z = torch.randn(n, zdim, generator=self.rng).to(self.device)
        self.D.requires_grad_(False)
        with self._autocast():
            fake = self.G_ddp(z, c)
            score, aux = self.D(augment.augment(fake.float(), self.aug_ops, self.rng), c)
            l_g_adv = loss.g_loss(score.float())
            l_g_aux = loss.aux_loss(aux, c)
            l_g = l_g_adv + self.opt.aux_weight * l_g_aux
        stats["loss/G_aux"] = float(l_g_aux.detach())
        self.opt_g.zero_grad(set_to_none=True)
        l_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        stats["loss/G"] = float(l_g.detach())
        # EMA of G, half-life ema_kimg (ramped up early in training).
        ema_nimg = self.opt.ema_kimg * 1000
        if self.opt.ema_rampup:
            ema_nimg = min(ema_nimg, self.nimg * self.opt.ema_rampup)
        beta = 0.5 ** (self.opt.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                pe.lerp_(p, 1 - beta)
        return stats

    # -- persistence -------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {
            "format": "chibi-meta-checkpoint/1", "step": self.step, "nimg": self.nimg, "elapsed": self.elapsed,
            "options": asdict(self.opt), "net": self.G.cfg.to_json(), "dataset": str(self.ds.root),
            "dataset_fingerprint": self.ds.fingerprint, "schema": self.ds.schema.to_json(),
        }

    def save(self) -> None:
        if self.rank != 0:
            return
        t: dict[str, torch.Tensor] = {}
        t.update(checkpoint.prefixed("G", self.G.state_dict()))
        t.update(checkpoint.prefixed("D", self.D.state_dict()))
        t.update(checkpoint.prefixed("G_ema", self.G_ema.state_dict()))
        og, sg = checkpoint.flatten_optimizer("opt_g", self.opt_g.state_dict())
        od, sd = checkpoint.flatten_optimizer("opt_d", self.opt_d.state_dict())
        t.update(og)
        t.update(od)
        t["rng"] = self.rng.get_state()
        meta = {**self._meta(), "opt_g": sg, "opt_d": sd}
        checkpoint.save(self.out / "checkpoint.safetensors", t, meta, sidecar=True)
        export_generator(self.out / "generator.safetensors", self.G_ema, self.ds.schema, self.model_info())
        log.info("checkpoint at step %d (%.1f kimg)", self.step, self.nimg / 1000)

    def model_info(self) -> dict:
        lic = self.ds.meta.get("license", {})
        return {
            "name": f"{Path(self.ds.root).name}-{self.nimg // 1000}kimg",
            "kimg": round(self.nimg / 1000, 1), "train_seconds": round(self.elapsed, 1),
            "device": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "world_size": self.world, "dataset_fingerprint": self.ds.fingerprint,
            "attribution": lic.get("attribution", self.ds.meta.get("attribution", "")),
            "license": lic.get("license", ""), "license_url": lic.get("license_url", ""),
        }

    def _load(self) -> None:
        path = self.out / "checkpoint.safetensors"
        if not path.exists():
            raise UsageError(f"--resume: {path} does not exist; start without --resume")
        t, meta = checkpoint.load(path)
        if meta.get("dataset_fingerprint") != self.ds.fingerprint:
            raise DataError(f"--resume: {path} was trained on dataset {meta.get('dataset_fingerprint')}, "
                            f"but {self.ds.root} is {self.ds.fingerprint}")
        self.G.load_state_dict(checkpoint.unprefixed("G", t))
        self.D.load_state_dict(checkpoint.unprefixed("D", t))
        self.G_ema.load_state_dict(checkpoint.unprefixed("G_ema", t))
        self.opt_g.load_state_dict(checkpoint.unflatten_optimizer(t, meta["opt_g"]))
        self.opt_d.load_state_dict(checkpoint.unflatten_optimizer(t, meta["opt_d"]))
        self.rng.set_state(t["rng"])
        self.step, self.nimg, self.elapsed = int(meta["step"]), int(meta["nimg"]), float(meta["elapsed"])
        log.info("resumed %s at step %d (%.1f kimg, %.0f s trained)", path, self.step, self.nimg / 1000, self.elapsed)

    def sample_grid(self) -> torch.Tensor:
        with torch.no_grad():
            x = self.G_ema(self.grid_z.to(self.device), self.grid_c.to(self.device)).float().cpu()
        return make_grid(x, 8)

    # -- the loop ----------------------------------------------------------------------------
    def done(self) -> bool:
        o = self.opt
        return (o.kimg is not None and self.nimg >= o.kimg * 1000) or (
            o.minutes is not None and self.elapsed >= o.minutes * 60)

    def run(self) -> None:
        writer = self._writer() if self.rank == 0 else None
        from tqdm import tqdm

        total = self.opt.kimg * 1000 if self.opt.kimg else None
        bar = tqdm(total=total, initial=self.nimg, unit="img", disable=not self.opt.progress or self.rank != 0,
                   smoothing=0.05, desc="train")
        last_snap = last_metrics = time.monotonic()
        seg_start, seg_elapsed0 = time.monotonic(), self.elapsed
        while not self.done():
            stats = self.train_step()
            self.elapsed = seg_elapsed0 + time.monotonic() - seg_start
            bar.update(self.opt.batch)
            if self.step % 20 == 0:
                g = f"{stats['loss/G']:.2f}" if "loss/G" in stats else "frozen"  # --freeze-g-kimg
                d = f"{stats['loss/D']:.2f}" if "loss/D" in stats else "classify"  # --d-classify-kimg
                bar.set_postfix(G=g, D=d, refresh=False)
                if writer:
                    for k, v in stats.items():
                        writer.add_scalar(k, v, self.nimg)
                    writer.add_scalar("speed/img_per_s", self.nimg / max(self.elapsed, 1e-6), self.nimg)
                if not all(math.isfinite(v) for v in stats.values()):
                    raise DataError(f"training diverged at step {self.step}: {stats}")
            now = time.monotonic()
            if now - last_snap >= self.opt.snapshot_minutes * 60:
                self._snapshot(writer)
                last_snap = now
            if self.rank == 0 and now - last_metrics >= self.opt.metrics_minutes * 60:
                self._metrics(writer)
                last_metrics = time.monotonic()
        bar.close()
        self._snapshot(writer)
        if self.rank == 0:
            self._metrics(writer)
        if writer:
            writer.close()

    def _snapshot(self, writer: object) -> None:
        if self._saved_step == self.step:
            return
        self._saved_step = self.step
        self.save()
        if self.rank == 0:
            from PIL import Image

            grid = self.sample_grid()
            (self.out / "samples").mkdir(exist_ok=True)
            img = Image.fromarray(grid.permute(1, 2, 0).numpy())
            with atomic_writer(self.out / "samples" / f"kimg-{self.nimg // 1000:05d}.png") as f:
                img.save(f, format="PNG")
            if writer is not None:
                writer.add_image("samples", grid, self.nimg)

    def _metrics(self, writer: object) -> None:
        from chibi_meta.gan import metrics

        res = metrics.periodic(self.G_ema, self.ds)
        if res is None:
            return
        res = {"kimg": round(self.nimg / 1000, 1), **res}
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(res, sort_keys=True) + "\n")
        if writer is not None:
            for k, v in res.items():
                if isinstance(v, (int, float)):
                    writer.add_scalar(f"metrics/{k}", v, self.nimg)
        log.info("metrics %s", res)

    def _writer(self) -> object | None:
        if not self.opt.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingDependency("TensorBoard logging needs 'tensorboard': pip install 'chibi-meta[train]', "
                                    "or pass --no-tensorboard") from None
        return SummaryWriter(str(self.out / "tb"))


def make_grid(x: torch.Tensor, cols: int, bg: int = 255) -> torch.Tensor:
    """(N, 4, R, R) in [-1, 1] -> (3, H, W) uint8, composited over a light background."""
    x = (x.clamp(-1, 1) + 1) / 2
    rgb, a = x[:, :3], x[:, 3:]
    x = rgb * a + (bg / 255) * (1 - a)
    n, _, h, w = x.shape
    rows = (n + cols - 1) // cols
    grid = torch.full((3, rows * h, cols * w), bg / 255)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[:, r * h:(r + 1) * h, c * w:(c + 1) * w] = x[i]
    return (grid * 255).round().to(torch.uint8)


def train(opt: TrainOptions, resume: bool = False) -> Path:
    trainer = Trainer(opt, resume=resume)
    try:
        trainer.run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return trainer.out
