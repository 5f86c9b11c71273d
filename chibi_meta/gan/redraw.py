"""Drawing fine-tune: teach the generator DiceBear's own drawing of each eyes, mouth and glasses value.

The conditioning fine-tune (``tune.py``) moves one embedding row and can only pick among what the
network already draws; for eyes11 (pupils low), mouth10 (pressed lips) and mouth28 (rounded open
mouth) that was not enough. Here every weight of the generator moves, steered by pixels that say
what the value looks like, with the rest of each image held where it was:

* **Pairs.** The built-in data is DiceBear art, image *i* drawn with seed *i* and its label set, so
  the same face can be drawn again with only its eyes (or mouth) changed. For each pair: training
  image *i*'s label set with the value *v* forced, DiceBear's drawing of it, and a mask of *v*'s
  footprint (the pixels where *v* is drawn differently from image *i*'s own value and from two
  other random values, dilated by ``MASK_DILATE`` px; eyebrows, hair and glasses frames, which do
  not change with the value, stay outside it). Values are drawn uniformly, or in proportion to
  ``weights`` (``--weights eyes=eyes11:12``: a value that lags gets more of the pairs). Glasses
  are redrawn the same way (``--attrs glasses``): their frames are a part at a fixed place, and
  glasses = none shows the eyes they covered.
* **Loss** per step, on ``batch`` pairs (latents drawn fresh) and ``batch`` other label sets of the
  training data: L1 to DiceBear's drawing inside the mask (weight ``inside``: 4 keeps its colours,
  where 1 let the classifier term leave mouth10's lip line green-grey); L1 to the *frozen* source generator's
  image of the same latent and labels outside it (weight ``outside``) and on the other label sets
  (weight ``anchor``), so the identity, the hair and everything else stays as it was; plus
  ``classify`` times the tuning classifier's cross-entropy of every attribute of all those images
  (the classifier of ``tune.py``: another seed, the first half of the training images). Pixel loss
  alone erases thin lines it cannot yet place (mouth10 read 86 -> 25 % after 200 steps: the lips
  were painted over with skin); the classifier term keeps a drawing there.
* **Check.** The *check classifier* (the second half of the training images) reads every attribute
  of ``check_images`` held-out label sets before and after; ``report.json`` has both and
  ``accepted`` is false when any attribute is read more than ``keep_others`` less often.

``chibi-meta redraw --data DIR --out RUN [--model FILE]`` writes RUN/generator.safetensors,
RUN/options.json and RUN/report.json. RUN/checkpoint.safetensors (weights, Adam state, RNG, step)
is written every ``checkpoint_every`` steps and RUN/pairs.npz once, so ``--resume`` after a kill
loses at most those steps. Only datasets built by ``chibi-meta dataset build --style adventurer``
can be redrawn (a folder of the user's own art has no renderer to ask).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chibi_meta.atomic import atomic_write_bytes, atomic_write_text
from chibi_meta.data.store import Dataset, load_dataset
from chibi_meta.errors import DataError, UsageError
from chibi_meta.gan import checkpoint
from chibi_meta.gan.metrics import HOLDOUT, Classifier
from chibi_meta.gan.tune import (
    CHECK_SEED,
    CLASSIFIER_SEED,
    KEEP_OTHERS,
    _shift,
    attribute_accuracy,
    train_tuning_classifier,
)

log = logging.getLogger(__name__)
Job = tuple[int, int, str, int, int, int]  # image size, row, attribute, value, two other values
PAIR_DIFF = 8  # a pixel is in a value's footprint when a channel differs by more than this (of 255)
MASK_DILATE = 1  # footprint grown by this many pixels (anti-aliased edges)
# attributes whose drawing is a separate part at a fixed place (glasses: frames over the eyes, and
# "none" shows the eyes they covered)
REDRAWABLE = ("eyes", "mouth", "glasses")
DEFAULT_ATTRS = ("eyes", "mouth")


@dataclass
class RedrawOptions:
    model: str
    data: str
    out: str
    attrs: tuple[str, ...] = DEFAULT_ATTRS
    pairs: int = 8000
    steps: int = 600
    batch: int = 16
    lr: float = 1e-4
    inside: float = 1.0  # weight of L1 to DiceBear's drawing inside the footprint
    outside: float = 1.0  # weight of L1 to the source generator outside the footprint
    anchor: float = 2.0  # weight of L1 to the source generator on other label sets
    classify: float = 0.05  # weight of the tuning classifier's cross-entropy
    classifier_epochs: float = 2.0
    seed: int = 0
    checkpoint_every: int = 100
    check_images: int = 400
    keep_others: float = KEEP_OTHERS
    workers: int = 0  # processes rendering the pairs (0: one per core)
    weights: str = ""  # "eyes=eyes11:4,mouth=mouth10:4": those values drawn 4x as often in the pairs (others 1)


def dicebear_pair(job: Job) -> tuple[np.ndarray, np.ndarray]:
    """DiceBear's drawing of image ``i`` with ``attr`` = value ``v``, and ``v``'s footprint mask.

    ``job`` = (image size, i, attr, v, w1, w2): the footprint is where the drawing differs from
    image ``i``'s own value and from values ``w1`` and ``w2`` (indices into ``attr``'s values)."""
    from scipy import ndimage

    from chibi_meta.data import dicebear
    from chibi_meta.data.build_dicebear import ADVENTURER

    size, i, attr, v, w1, w2 = job
    full = ADVENTURER.resolve(i)
    values = next(a.values for a in ADVENTURER.attributes if a.name == attr)

    def draw(k: int) -> np.ndarray:
        return dicebear.rasterise(dicebear.avatar(i, {**full, attr: values[k]}, size).to_string(), size)  # type: ignore[attr-defined]

    target = draw(v).astype(np.int16)
    mask = np.zeros(target.shape[:2], bool)
    for k in {values.index(full[attr]), w1, w2} - {v}:
        mask |= np.abs(draw(k).astype(np.int16) - target).max(-1) > PAIR_DIFF
    return target.astype(np.uint8), ndimage.binary_dilation(mask, iterations=MASK_DILATE)


def check_renderable(ds: Dataset) -> None:
    """A DataError unless ``ds`` was rendered by DiceBear adventurer (so that its faces can be redrawn)."""
    if ds.meta.get("source") != "dicebear" or ds.meta.get("style") != "adventurer":
        raise DataError(f"{ds.root}: only a DiceBear adventurer dataset (chibi-meta dataset build --style adventurer) "
                        f"can be redrawn; this one's source is {ds.meta.get('source', 'a folder')!r}")  # fmt: skip


def parse_weights(spec: str, schema: object) -> dict[tuple[str, int], float]:
    """``eyes=eyes11:4,mouth=mouth10:3`` -> {(attr, value index): weight}, checked against ``schema``."""
    out: dict[tuple[str, int], float] = {}
    attrs = {a.name: a for a in schema.attributes}  # type: ignore[attr-defined]
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        attr, _, rest = item.partition("=")
        value, _, w = rest.partition(":")
        try:
            weight = float(w)
        except ValueError:
            weight = float("nan")
        if not 0 < weight <= 100:  # also false for nan
            raise UsageError(f"--weights {item!r}: takes ATTR=VALUE:WEIGHT with a weight in (0, 100], "
                             "e.g. eyes=eyes11:4")  # fmt: skip
        if attr not in REDRAWABLE or attr not in attrs:
            raise UsageError(f"--weights {item!r}: {attr!r} is not redrawn; allowed: {', '.join(REDRAWABLE)}")
        if value not in attrs[attr].values:
            raise UsageError(f"--weights {item!r}: {value!r} is not a value of {attr}; allowed: "
                             f"{', '.join(attrs[attr].values)}")  # fmt: skip
        out[(attr, attrs[attr].values.index(value))] = weight
    return out


def sample_pairs(ds: Dataset, attrs: tuple[str, ...], n: int, seed: int,
                 weights: dict[tuple[str, int], float] | None = None) -> list[Job]:  # fmt: skip
    """The ``n`` pair jobs (size, row, attr, value, two other values) of ``render_pairs``: rows of the
    training part of ``ds`` (never the held-out tail), the attribute uniform over ``attrs``, its value
    drawn with probability proportional to ``weights`` (default 1 each)."""
    names = ds.schema.names
    rng = np.random.default_rng(seed)
    train_rows = len(ds) - min(HOLDOUT, len(ds) // 5)
    probs = {}
    for attr in attrs:
        w = np.array([(weights or {}).get((attr, v), 1.0) for v in range(ds.schema.sizes[names.index(attr)])])
        probs[attr] = w / w.sum()
    jobs = []
    for _ in range(n):
        attr = attrs[int(rng.integers(len(attrs)))]
        k = len(probs[attr])
        v = int(rng.choice(k, p=probs[attr]))
        jobs.append((ds.size, int(rng.integers(train_rows)), attr, v, *(int(x) for x in rng.integers(k, size=2))))
    return jobs


def render_pairs(ds: Dataset, attrs: tuple[str, ...], n: int, seed: int, workers: int = 0,
                 weights: dict[tuple[str, int], float] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """DiceBear's drawings of the ``sample_pairs`` jobs: {"row", "col", "value", "image" (n, S, S, 4)
    uint8, "mask" (n, S, S) bool}."""
    check_renderable(ds)
    jobs = sample_pairs(ds, attrs, n, seed, weights)
    cols = [ds.schema.names.index(j[2]) for j in jobs]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        res = [dicebear_pair(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as ex:
            res = list(ex.map(dicebear_pair, jobs, chunksize=max(1, n // (8 * workers))))
    return {"row": np.array([j[1] for j in jobs]), "col": np.array(cols), "value": np.array([j[3] for j in jobs]),
            "image": np.stack([r[0] for r in res]), "mask": np.stack([r[1] for r in res])}  # fmt: skip


def _load_or_render_pairs(ds: Dataset, opt: RedrawOptions, out: Path,
                          weights: dict[tuple[str, int], float]) -> dict[str, np.ndarray]:  # fmt: skip
    path = out / "pairs.npz"
    key = json.dumps([ds.fingerprint, list(opt.attrs), opt.pairs, opt.seed, opt.weights])
    if path.is_file():
        with np.load(path) as f:
            pairs = {k: f[k] for k in f.files}
        if len(pairs["row"]) == opt.pairs and str(pairs.get("key", "")) == key:
            return pairs
    log.info("rendering %d DiceBear pairs", opt.pairs)
    pairs = render_pairs(ds, opt.attrs, opt.pairs, opt.seed, opt.workers, weights)
    pairs["key"] = np.array(key)
    buf = io.BytesIO()
    np.savez_compressed(buf, **pairs)
    atomic_write_bytes(path, buf.getvalue())
    return pairs


def _classifier(ds: Dataset, out: Path, name: str, epochs: float, seed: int, half: int) -> Classifier:
    path = out / f"{name}.safetensors"
    if path.is_file():
        tensors, meta = checkpoint.load(path)
        if meta.get("dataset_fingerprint") == ds.fingerprint and meta.get("seed") == seed:
            clf = Classifier(tuple(meta["sizes"]))
            clf.load_state_dict(tensors)
            return clf.eval().requires_grad_(False)
    clf = train_tuning_classifier(ds, epochs, seed=seed, half=half)
    checkpoint.save(path, clf.state_dict(), {"format": "chibi-meta-classifier/1", "dataset_fingerprint": ds.fingerprint,
                                             "sizes": list(ds.schema.sizes), "seed": seed})  # fmt: skip
    return clf


def redraw_loss(G: torch.nn.Module, G0: torch.nn.Module, clf: Classifier, pairs: dict[str, torch.Tensor],
                k: torch.Tensor, others: torch.Tensor, opt: RedrawOptions, g: torch.Generator,
                labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """The loss of one step on pairs ``k`` and the other label sets ``others`` (module docstring)."""
    n = len(k)
    lab = labels[pairs["row"][k]].clone()
    lab[torch.arange(n), pairs["col"][k]] = pairs["value"][k]
    lab = torch.cat([lab, others])
    z = torch.randn(len(lab), G.cfg.z_dim, generator=g)
    with torch.no_grad():
        ref = G0(z, lab)
    x = G(z, lab)
    m = pairs["mask"][k][:, None].expand(-1, 4, -1, -1)
    target = pairs["image"][k].permute(0, 3, 1, 2).float() / 127.5 - 1
    diff = (x[:n] - torch.where(m, target, ref[:n])).abs()
    parts = {"inside": (diff * m).sum() / m.sum().clamp(min=1), "outside": (diff * ~m).sum() / (~m).sum().clamp(min=1),
             "anchor": (x[n:] - ref[n:]).abs().mean()}  # fmt: skip
    loss = opt.inside * parts["inside"] + opt.outside * parts["outside"] + opt.anchor * parts["anchor"]
    if opt.classify:
        out = clf(_shift(x, g))
        parts["classify"] = sum(F.cross_entropy(o, lab[:, a]) for a, o in enumerate(out))
        loss = loss + opt.classify * parts["classify"]
    return loss, {key: round(float(v.detach()), 5) for key, v in parts.items()}


def run(opt: RedrawOptions, resume: bool = False) -> dict:
    """Fine-tune, check, export; returns the report (also RUN/report.json)."""
    from chibi_meta.gan.api import TextureGenerator, export_generator

    src = TextureGenerator.load(opt.model)
    ds = load_dataset(opt.data)
    if src.schema.to_json() != ds.schema.to_json():
        raise UsageError(f"--model {opt.model} and --data {opt.data} have different attributes")
    check_renderable(ds)
    weights = parse_weights(opt.weights, ds.schema)  # a UsageError before any work
    unused = sorted({a for a, _ in weights} - set(opt.attrs))
    if unused:
        raise UsageError(f"--weights names {', '.join(unused)}, which --attrs {','.join(opt.attrs)} does not redraw")
    out = Path(opt.out)
    ck_path = out / "checkpoint.safetensors"
    if resume and not ck_path.is_file():
        raise UsageError(f"--resume: {ck_path} does not exist; start without --resume")
    if not resume and ck_path.is_file():
        raise UsageError(f"{out} holds a redraw run already; add --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "options.json", json.dumps(asdict(opt), indent=1, sort_keys=True) + "\n")
    torch.manual_seed(opt.seed)
    G0 = src.G.float().eval()
    G = copy.deepcopy(G0).train().requires_grad_(True).to(memory_format=torch.contiguous_format)
    clf = _classifier(ds, out, "tuning_classifier", opt.classifier_epochs, seed=CLASSIFIER_SEED, half=0)
    judge = _classifier(ds, out, "check_classifier", opt.classifier_epochs, seed=CHECK_SEED, half=1)
    raw = _load_or_render_pairs(ds, opt, out, weights)
    pairs = {k: torch.from_numpy(v) for k, v in raw.items() if k != "key"}
    labels = torch.as_tensor(ds.labels, dtype=torch.long)
    hold = min(HOLDOUT, len(ds) // 5)
    pool = labels[: len(ds) - hold]
    check = ds.labels[len(ds) - hold :][: opt.check_images]
    adam = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(opt.seed)
    step = 0
    if resume:
        t, meta = checkpoint.load(ck_path)
        G.load_state_dict(checkpoint.unprefixed("G", t))
        adam.load_state_dict(checkpoint.unflatten_optimizer(t, meta["opt"]))
        g.set_state(t["rng"])
        step = int(meta["step"])
        log.info("resumed %s at step %d", ck_path, step)
    before = attribute_accuracy(G0, (judge,), check, None, 0, seed=10_000)[0]
    while step < opt.steps:
        k = torch.randint(0, len(pairs["row"]), (opt.batch,), generator=g)
        others = pool[torch.randint(0, len(pool), (opt.batch,), generator=g)]
        loss, parts = redraw_loss(G, G0, clf, pairs, k, others, opt, g, labels)
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()
        step += 1
        if step % 25 == 0:
            log.info("redraw step %d/%d: %s", step, opt.steps, parts)
        if step % opt.checkpoint_every == 0 or step == opt.steps:
            t = checkpoint.prefixed("G", G.state_dict())
            o, skel = checkpoint.flatten_optimizer("opt", adam.state_dict())
            checkpoint.save(ck_path, {**t, **o, "rng": g.get_state()}, {"step": step, "opt": skel})
    G.eval().requires_grad_(False)
    after = attribute_accuracy(G, (judge,), check, None, 0, seed=10_000)[0]
    names = [a.name for a in ds.schema.attributes]
    drops = {n: round(before[i] - after[i], 4) for i, n in enumerate(names)}
    report = {"check_before": dict(zip(names, (round(b, 4) for b in before), strict=True)),
              "check_after": dict(zip(names, (round(a, 4) for a in after), strict=True)),
              "check_drop": drops, "accepted": max(drops.values()) <= opt.keep_others, "steps": step}  # fmt: skip
    info = {k: v for k, v in src.meta.items() if k not in ("format", "net", "schema")}
    info["redrawn_from"] = src.model_id
    entry = {"from": src.model_id, "attrs": list(opt.attrs), "steps": step, "pairs": opt.pairs}
    if opt.weights:
        entry["weights"] = opt.weights
    if opt.inside != 1.0:
        entry["inside"] = opt.inside
    info.pop("redraw", None)  # the single-run record of earlier versions
    info["redraw_history"] = [*src.meta.get("redraw_history", []), entry]  # every redraw since training
    tensors, _ = checkpoint.load(opt.model)  # keep the file's precision (the shipped model is fp16)
    half = all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    export_generator(out / "generator.safetensors", G, src.schema, info, half=half)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
    log.info("redraw: check classifier before %s after %s: %s", report["check_before"], report["check_after"],
             "accepted" if report["accepted"] else "NOT accepted (an attribute is read less often)")
    return report


def check_options(opt: RedrawOptions) -> RedrawOptions:
    """Validate ``opt``; a UsageError names what is wrong and what is allowed."""
    ints = (("pairs", 1, 1_000_000), ("steps", 1, 1_000_000), ("batch", 1, 1024),
            ("checkpoint_every", 1, 1_000_000), ("check_images", 1, 100_000), ("workers", 0, 256))  # fmt: skip
    for name, lo, hi in ints:
        v = getattr(opt, name)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise UsageError(f"--{name.replace('_', '-')} must be an integer in [{lo}, {hi}], got {v!r}")
    for name, lo, hi in (("lr", 0, 1), ("inside", 0, 100), ("outside", 0, 100), ("anchor", 0, 100),
                         ("classify", 0, 100), ("classifier_epochs", 0, 100), ("keep_others", 0, 1)):  # fmt: skip
        v = getattr(opt, name)
        positive = name in ("lr", "inside", "classifier_epochs")
        if not lo <= v <= hi or (positive and v == 0):
            more = " and > 0" if positive else ""
            raise UsageError(f"--{name.replace('_', '-')} must be in [{lo}, {hi}]{more}, got {v}")
    bad = [a for a in opt.attrs if a not in REDRAWABLE]
    if not opt.attrs or bad:
        raise UsageError(f"--attrs {','.join(opt.attrs) or '(empty)'}: allowed: {', '.join(REDRAWABLE)} "
                         "(the parts drawn at a fixed place)")
    if not Path(opt.model).is_file():
        raise UsageError(f"--model {opt.model}: no such file")
    return opt
