"""Conditioning fine-tune: move the embeddings of chosen attribute values until the generator draws
them as labelled, everything else of the model fixed.

A conditional generator that draws a value poorly (eyes11 drawn as eyes11 61 % as often as real
art shows it) usually knows how to draw it: the value's 32-number embedding sits where the mapping
network mixes it with its neighbours. This step optimises only that embedding row (per value), with
the network frozen, so that a classifier reads the images made with it as the value (and every
other attribute as asked). The images stay on the generator's own manifold (no weight of the
synthesis network changes), images of every other value are bit-identical, and the cost is
minutes on a CPU instead of the hours a GAN fine-tune needs.

The classifier that steers it (the *tuning classifier*) is trained here, separately from the eval
classifier that measures the result: another seed and only the first half of the training images,
so that the gain is measured by a model that did not steer it. A third, the *check classifier*
(another seed, the other half of the images), judges each tuned value: the new embedding is kept
only if it too reads the value at least ``KEEP_GAIN`` more often, else the value keeps its trained
embedding (two classifiers disagreeing means the tuning found what one classifier likes, not the
drawing), and only if no other attribute of those images (glasses, hair, ...) reads more than
``KEEP_OTHERS`` less often: an embedding that wins by dropping the sunglasses that hide the eyes
is reverted. Each other attribute's cross-entropy is in the loss with weight ``hold`` for the same
reason. Images go through a random
translation of up to ``SHIFT_PX`` before the classifier (expectation over transformations), so the
embedding cannot win with a few pixels that one classifier happens to like.

``chibi-meta tune --model FILE --data DIR --values eyes=eyes11,mouth=mouth03 --out RUN`` writes
RUN/generator.safetensors, RUN/options.json and RUN/report.json (before/after accuracy of each value
by the tuning and the check classifier on fresh label sets, and whether it was kept).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chibi_meta.atomic import atomic_write_text
from chibi_meta.data.store import Dataset, load_dataset
from chibi_meta.errors import UsageError
from chibi_meta.gan import checkpoint
from chibi_meta.gan.metrics import HOLDOUT, Classifier, train_classifier
from chibi_meta.gan.networks import pixel_norm

log = logging.getLogger(__name__)
SHIFT_PX = 4  # random translation (pixels at 128 px) of every image the tuning classifier sees
CLASSIFIER_SEED = 1  # the tuning classifier (first half of the training images); eval's uses seed 0, all
CHECK_SEED = 2  # the check classifier: the second half; it judges each tuned value, it never steers
KEEP_GAIN = 0.02  # a tuned embedding is kept only if the check classifier reads its value this much more often
KEEP_OTHERS = 0.01  # ... and reads no other attribute of the same images more than this much less often


@dataclass
class TuneOptions:
    model: str
    data: str
    out: str
    values: list[tuple[str, str]] = field(default_factory=list)  # (attribute, value)
    steps: int = 150
    batch: int = 16
    lr: float = 0.02
    anchor: float = 0.02  # weight of |e - e0|^2: stay near the trained embedding
    hold: float = 1.0  # weight of each other attribute's cross-entropy: the rest stays as asked
    classifier_epochs: float = 2.0
    seed: int = 0
    check_images: int = 200
    keep_gain: float = KEEP_GAIN
    keep_others: float = KEEP_OTHERS


def parse_values(spec: str, schema: object) -> list[tuple[str, str]]:
    """``eyes=eyes11,mouth=mouth03`` -> [(attr, value)], each checked against the schema."""
    out = []
    names = {a.name: a for a in schema.attributes}  # type: ignore[attr-defined]
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        attr, _, value = item.partition("=")
        if attr not in names:
            raise UsageError(f"--values {item!r}: unknown attribute {attr!r}; allowed: {', '.join(names)}")
        if value not in names[attr].values:
            raise UsageError(f"--values {item!r}: {value!r} is not a value of {attr}; allowed: "
                             f"{', '.join(names[attr].values)}")  # fmt: skip
        out.append((attr, value))
    if not out:
        raise UsageError("--values names no attribute=value pair (e.g. eyes=eyes11,mouth=mouth03)")
    return out


def train_tuning_classifier(ds: Dataset, epochs: float, seed: int = CLASSIFIER_SEED, half: int = 0) -> Classifier:
    """A classifier of the eval classifier's architecture, with another seed, on one half (0: the
    first, 1: the second) of the training images only (the held-out tail is never seen), every
    batch shifted (``_shift``)."""
    n_half = (len(ds) - min(HOLDOUT, len(ds) // 5)) // 2
    if n_half < 10:
        raise UsageError(f"{ds.root}: too few images to train a tuning classifier ({len(ds)})")
    clf = train_classifier(ds, epochs, seed=seed, rows=(half * n_half, n_half), augment=_shift, save=False)
    return clf.requires_grad_(False)


def _shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each image translated by up to SHIFT_PX (scaled to its size) pixels, edges clamped."""
    r = max(1, round(SHIFT_PX * x.shape[-1] / 128))
    n, _, h, w = x.shape
    dy, dx = (torch.randint(-r, r + 1, (2, n), generator=g)).tolist()
    ys = (torch.arange(h)[None, :] - torch.tensor(dy)[:, None]).clamp(0, h - 1)
    xs = (torch.arange(w)[None, :] - torch.tensor(dx)[:, None]).clamp(0, w - 1)
    return x[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
             ys[:, None, :, None], xs[:, None, None, :]]  # fmt: skip


def attribute_accuracy(G: torch.nn.Module, classifiers: Sequence[Classifier], labels: np.ndarray, col: int | None,
                       v: int, seed: int) -> list[list[float]]:  # fmt: skip
    """Per classifier and attribute, the share of images made with ``labels`` (column ``col`` set to
    ``v``; ``col`` None: as labelled) that the classifier reads as labelled; entry ``col`` is how
    often it reads ``v``. Each image is drawn once and read by every classifier."""
    lab = torch.as_tensor(labels, dtype=torch.long).clone()
    if col is not None:
        lab[:, col] = v
    g = torch.Generator().manual_seed(seed)
    hits = np.zeros((len(classifiers), lab.shape[1]))
    with torch.no_grad():
        for i in range(0, len(lab), 64):
            z = torch.randn(len(lab[i:i + 64]), G.cfg.z_dim, generator=g)
            x = G(z, lab[i:i + 64])
            for j, clf in enumerate(classifiers):
                hits[j] += [int((o.argmax(1) == lab[i:i + 64, a]).sum()) for a, o in enumerate(clf(x))]
    return (hits / max(len(lab), 1)).tolist()


def tune_value(G: torch.nn.Module, clf: Classifier, pool: np.ndarray, col: int, v: int,
               opt: TuneOptions, seed: int) -> torch.Tensor:  # fmt: skip
    """The tuned embedding row of value ``v`` of attribute ``col`` (G is left unchanged)."""
    table = G.embed.tables[col]
    e0 = table.weight[v].detach().clone()
    e = e0.clone().requires_grad_(True)
    adam = torch.optim.Adam([e], lr=opt.lr)
    g = torch.Generator().manual_seed(seed)
    G.requires_grad_(False)
    for step in range(opt.steps):
        lab = torch.as_tensor(pool[torch.randint(0, len(pool), (opt.batch,), generator=g).numpy()], dtype=torch.long)
        lab[:, col] = v
        z = torch.randn(opt.batch, G.cfg.z_dim, generator=g)
        emb = torch.cat([e.expand(opt.batch, -1) if i == col else t(lab[:, i])
                         for i, t in enumerate(G.embed.tables)], 1)  # fmt: skip
        x = G.synthesize(G.mapping(torch.cat([pixel_norm(z), emb], 1)))  # G.map with the row swapped
        out = clf(_shift(x, g))
        others = sum(F.cross_entropy(o, lab[:, i]) for i, o in enumerate(out) if i != col)
        loss = F.cross_entropy(out[col], lab[:, col]) + opt.hold * others + opt.anchor * (e - e0).square().sum()
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()
        if step % 50 == 0:
            log.info("value %d of attribute %d: step %d loss %.3f", v, col, step, float(loss.detach()))
    return e.detach()


def keep_decision(before: Sequence[float], after: Sequence[float], col: int, names: Sequence[str],
                  keep_gain: float, keep_others: float) -> tuple[bool, dict[str, float]]:  # fmt: skip
    """Whether a tuned value stays, from the check classifier's per-attribute accuracies before and
    after: its own must rise by ``keep_gain`` and no other may fall by more than ``keep_others``.
    Also each other attribute's drop (positive: read less often)."""
    drops = {n: round(before[i] - after[i], 4) for i, n in enumerate(names) if i != col}
    ok_others = not drops or max(drops.values()) <= keep_others
    return after[col] >= before[col] + keep_gain and ok_others, drops


def run(opt: TuneOptions) -> dict:
    """Tune every value of ``opt.values`` in turn; write RUN/generator.safetensors and the report."""
    from chibi_meta.gan.api import TextureGenerator, export_generator

    src = TextureGenerator.load(opt.model)
    ds = load_dataset(opt.data)
    if src.schema.to_json() != ds.schema.to_json():
        raise UsageError(f"--model {opt.model} and --data {opt.data} have different attributes")
    out = Path(opt.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "options.json", json.dumps(asdict(opt), indent=1, sort_keys=True) + "\n")
    G = src.G.eval()
    clf = train_tuning_classifier(ds, opt.classifier_epochs)
    judge = train_tuning_classifier(ds, opt.classifier_epochs, seed=CHECK_SEED, half=1)
    checkpoint.save(out / "tuning_classifier.safetensors", clf.state_dict(),
                    {"format": "chibi-meta-classifier/1", "dataset_fingerprint": ds.fingerprint,
                     "sizes": list(ds.schema.sizes), "seed": CLASSIFIER_SEED})  # fmt: skip
    hold = min(HOLDOUT, len(ds) // 5)
    pool = ds.labels[: len(ds) - hold]  # label sets the tuning draws from
    check = ds.labels[len(ds) - hold :][: opt.check_images]  # fresh label sets for the report
    names = [a.name for a in ds.schema.attributes]
    report = {}
    for k, (attr, value) in enumerate(opt.values):
        col = names.index(attr)
        v = ds.schema.attributes[col].values.index(value)
        before = attribute_accuracy(G, (clf, judge), check, col, v, seed=10_000 + k)
        row0 = G.embed.tables[col].weight[v].detach().clone()
        row = tune_value(G, clf, pool, col, v, opt, seed=opt.seed + k)
        with torch.no_grad():
            G.embed.tables[col].weight[v] = row
        after = attribute_accuracy(G, (clf, judge), check, col, v, seed=10_000 + k)
        kept, drops = keep_decision(before[1], after[1], col, names, opt.keep_gain, opt.keep_others)
        worst = max(drops, key=drops.__getitem__) if drops else "-"
        if not kept:
            with torch.no_grad():
                G.embed.tables[col].weight[v] = row0
        report[f"{attr}={value}"] = {"tuning_before": round(before[0][col], 4), "tuning_after": round(after[0][col], 4),
                                     "check_before": round(before[1][col], 4), "check_after": round(after[1][col], 4),
                                     "check_others_drop": drops, "kept": kept}  # fmt: skip
        log.info("%s=%s drawn as requested, tuning classifier %.1f -> %.1f %%, check classifier %.1f -> %.1f %% "
                 "(largest drop of another attribute: %s %.1f points): %s", attr, value, 100 * before[0][col],
                 100 * after[0][col], 100 * before[1][col], 100 * after[1][col], worst, 100 * drops.get(worst, 0.0),
                 "kept" if kept else "reverted")  # fmt: skip
    info = {k: v for k, v in src.meta.items() if k not in ("format", "net", "schema")}
    info["tuned_values"] = [key for key, r in report.items() if r["kept"]]
    info["tuned_from"] = src.model_id
    tensors, _ = checkpoint.load(opt.model)  # keep the file's precision (the shipped model is fp16)
    half = all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    export_generator(out / "generator.safetensors", G, src.schema, info, half=half)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
    return report


def check_options(opt: TuneOptions, values_spec: str | None) -> TuneOptions:
    """Validate ``opt`` (a UsageError names what is wrong) and parse ``values_spec`` into it."""
    for name, lo, hi in (("steps", 1, 100_000), ("batch", 2, 1024), ("check_images", 1, 100_000)):
        v = getattr(opt, name)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise UsageError(f"--{name.replace('_', '-')} must be an integer in [{lo}, {hi}], got {v!r}")
    if not 0 < opt.lr <= 1 or not 0 <= opt.anchor <= 100 or not 0 < opt.classifier_epochs <= 100:
        raise UsageError("--lr must be in (0, 1], --anchor in [0, 100], --classifier-epochs in (0, 100]")
    if not -1 <= opt.keep_gain <= 1:
        raise UsageError(f"--keep-gain must be in [-1, 1] (a share), got {opt.keep_gain}")
    if not 0 <= opt.keep_others <= 1 or not 0 <= opt.hold <= 100:
        raise UsageError(f"--keep-others must be in [0, 1] (a share), got {opt.keep_others}; --hold in [0, 100], "
                         f"got {opt.hold}")
    if not Path(opt.model).is_file():
        raise UsageError(f"--model {opt.model}: no such file")
    if values_spec is not None:
        from chibi_meta.gan.api import TextureGenerator

        opt.values = parse_values(values_spec, TextureGenerator.load(opt.model).schema)
    return opt


def tuned_rows(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> Sequence[tuple[str, int]]:
    """(tensor name, row) of every embedding row that differs between two generator state dicts."""
    out = []
    for k, v in a.items():
        if k.startswith("embed.") and not torch.equal(v, b[k]):
            out += [(k, int(r)) for r in torch.nonzero((v != b[k]).any(1)).flatten()]
        elif not k.startswith("embed.") and not torch.equal(v, b[k]):
            out.append((k, -1))
    return out
