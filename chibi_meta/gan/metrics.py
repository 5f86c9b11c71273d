"""Metrics of a generator against its dataset, judged by a classifier trained on the real data.

* **Attribute accuracy**: generate textures for attribute sets drawn from held-out real labels; the
  classifier predicts each attribute; the share it gets right. The classifier's accuracy on the
  held-out real images is the ceiling; we report generated / ceiling. Attributes with at most
  ``PER_VALUE_MAX`` values also get it per value (``acc_gen/glasses=glasses03``), since a rare
  value that is never drawn barely moves the mean.
* **Fréchet distance** (FID-style) between Gaussian fits of the classifier's 256-d penultimate
  features of real and generated images; the real-vs-real figure (two disjoint real sets of the
  same size) is the floor it should approach.
* **Off-hue pixels** (``off_hue_pixels``): in a part's footprint, the saturated pixels of a
  generated face whose hue DiceBear's own drawing of the same face does not have there, such as
  a green blob on a brown lip line. Greys, whites and blacks never count, so a slightly cool white
  is no tint, nor do one- and two-pixel colour fringes along an outline; the real drawing has none
  by construction (``bench/per_value.py`` prints it per value).
* **Diversity**: (1) mean pairwise feature distance of generated / of real images (1.0 = as
  diverse as the data, near 0 = mode collapse); (2) for fixed attributes, the mean pixel L1
  between samples of different seeds (0 = the latent is ignored: conditional collapse).

The classifier is trained once per dataset and cached beside it as classifier.safetensors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chibi_meta.data.store import Dataset
from chibi_meta.gan import checkpoint

log = logging.getLogger(__name__)
CLASSIFIER = "classifier.safetensors"
HOLDOUT = 2000  # the last HOLDOUT images of a dataset are never used to train the classifier
OFF_HUE_DEGREES = 40.0  # a generated pixel's hue this far from every hue of the real drawing is off
OFF_HUE_SATURATION = (0.25, 0.12)  # ... when its HSV saturation and chroma (max - min, of 1) exceed these
REAL_HUE_SATURATION = (0.15, 0.06)  # the real drawing's pixels whose hues count (anti-aliased edges too)
OFF_HUE_MIN_BLOB = 3  # off-hue pixels count in 8-connected blobs of at least this many (not 1-px fringes)
PER_VALUE_MAX = 64  # attributes with at most this many values get per-value accuracies (eyes 26, mouth 30)


class Classifier(nn.Module):
    """A small CNN on 64 px composites with one head per attribute."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        super().__init__()
        ch = (4, 32, 64, 128, 256)
        layers: list[nn.Module] = []
        for a, b in zip(ch[:-1], ch[1:], strict=True):
            layers += [nn.Conv2d(a, b, 3, 2, 1), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
                       nn.Conv2d(b, b, 3, 1, 1), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(256, n) for n in sizes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 64:
            x = F.interpolate(x, size=(64, 64), mode="area")
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.features(x)
        return [h(f) for h in self.heads]


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC RGBA -> float NCHW in [-1, 1]."""
    t = torch.as_tensor(images)
    return t.permute(0, 3, 1, 2).float() / 127.5 - 1


def train_classifier(ds: Dataset, epochs: float = 2.0, batch: int = 64, seed: int = 0,
                     rows: tuple[int, int] | None = None,
                     augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                     save: bool = True) -> Classifier:  # fmt: skip
    """Train on every image but the held-out tail (or on images ``rows`` = (start, count) of it),
    each batch through ``augment`` if given; cache the weights beside the dataset if ``save``."""
    n_train = len(ds) - min(HOLDOUT, len(ds) // 5)
    lo, n_rows = rows if rows is not None else (0, n_train)
    if n_rows < 10 or not ds.schema.attributes:
        from chibi_meta.errors import DataError

        raise DataError("metrics need a labelled dataset of at least 50 images")
    torch.manual_seed(seed)
    clf = Classifier(ds.schema.sizes)
    opt = torch.optim.AdamW(clf.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = max(1, int(epochs * n_rows / batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    clf.train()
    for step in range(steps):
        idx = torch.randint(lo, lo + n_rows, (batch,), generator=g)
        x = to_input(ds.images[idx.numpy()])
        if augment is not None:
            x = augment(x, g)
        y = torch.from_numpy(ds.labels[idx.numpy()])
        out = clf(x)
        loss = sum(F.cross_entropy(o, y[:, i]) for i, o in enumerate(out))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0:
            log.info("classifier step %d/%d loss %.3f", step, steps, float(loss.detach()))
    clf.eval()
    if save:
        checkpoint.save(Path(ds.root) / CLASSIFIER, clf.state_dict(),
                        {"format": "chibi-meta-classifier/1", "dataset_fingerprint": ds.fingerprint,
                         "sizes": list(ds.schema.sizes), "n_train": n_rows})  # fmt: skip
    return clf


def load_classifier(ds: Dataset, train_if_missing: bool = True) -> Classifier | None:
    path = Path(ds.root) / CLASSIFIER
    if path.exists():
        t, meta = checkpoint.load(path)
        if meta.get("dataset_fingerprint") == ds.fingerprint:
            clf = Classifier(ds.schema.sizes)
            clf.load_state_dict(t)
            return clf.eval()
    return train_classifier(ds) if train_if_missing else None


@torch.no_grad()
def predict(clf: Classifier, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(class predictions (N, A), features (N, 256))."""
    preds, feats = [], []
    for i in range(0, len(images), batch):
        x = to_input(images[i:i + batch])
        f = clf.features(x)
        preds.append(torch.stack([h(f).argmax(1) for h in clf.heads], 1))
        feats.append(f)
    return torch.cat(preds).numpy(), torch.cat(feats).double().numpy()


def _hue_saturation_chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hue in degrees, HSV saturation, chroma = max - min of 1) of (N, 3) uint8 colours."""
    from skimage.color import rgb2hsv

    hsv = rgb2hsv(rgb.reshape(-1, 1, 3)).reshape(-1, 3)
    return hsv[:, 0] * 360, hsv[:, 1], hsv[:, 1] * hsv[:, 2]


def off_hue_pixels(generated: np.ndarray, real: np.ndarray, mask: np.ndarray) -> int:
    """Off-hue pixels of one part in one face: ``generated`` and ``real`` are (H, W, 3+) uint8
    images of the same face, ``mask`` (H, W) the part's footprint. A pixel of ``generated`` in the
    footprint is off-hue when it is saturated (``OFF_HUE_SATURATION``) and its hue is more than
    ``OFF_HUE_DEGREES`` from every hue that ``real`` has in the footprint (its own pixels above
    ``REAL_HUE_SATURATION``); only off-hue pixels in 8-connected blobs of at least
    ``OFF_HUE_MIN_BLOB`` count, so a visible tint counts and one-pixel colour fringes along an
    outline do not."""
    from scipy import ndimage

    hg, sg, cg = _hue_saturation_chroma(generated[..., :3][mask])
    hr, sr, cr = _hue_saturation_chroma(real[..., :3][mask])
    off = (sg > OFF_HUE_SATURATION[0]) & (cg > OFF_HUE_SATURATION[1])
    ref = np.unique(np.round(hr[(sr > REAL_HUE_SATURATION[0]) & (cr > REAL_HUE_SATURATION[1])]))
    if off.any() and ref.size:
        d = np.abs(hg[off][:, None] - ref[None, :])
        off[off] = np.minimum(d, 360 - d).min(1) > OFF_HUE_DEGREES
    img = np.zeros(mask.shape, bool)
    img[mask] = off
    blobs, _ = ndimage.label(img, structure=np.ones((3, 3), bool))
    sizes = np.bincount(blobs.ravel())
    sizes[0] = 0
    return int(sizes[sizes >= OFF_HUE_MIN_BLOB].sum())


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def mean_pairwise(f: np.ndarray, max_n: int = 500) -> float:
    f = torch.as_tensor(f[:max_n])
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def generate_for(G: nn.Module, labels: np.ndarray, seed: int, batch: int = 64) -> np.ndarray:
    from chibi_meta.gan.api import to_uint8

    g = torch.Generator().manual_seed(seed)
    out = []
    dev = next(G.parameters()).device
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            lab = torch.as_tensor(labels[i:i + batch], dtype=torch.long)
            z = torch.randn(len(lab), G.cfg.z_dim, generator=g)
            out.append(to_uint8(G(z.to(dev), lab.to(dev)).float()))
    return np.concatenate(out)


def evaluate(G: nn.Module, ds: Dataset, n: int = 2000, seed: int = 0, train_if_missing: bool = True) -> dict | None:
    """All metrics; ``n`` generated and real images (held-out split)."""
    clf = load_classifier(ds, train_if_missing)
    if clf is None:
        return None
    was_training = G.training
    G.eval()
    hold = min(HOLDOUT, len(ds) // 5)
    n = min(n, hold)
    real = ds.images[-n:]
    real_lab = ds.labels[-n:]
    fake = generate_for(G, real_lab, seed)
    p_real, f_real = predict(clf, real)
    p_fake, f_fake = predict(clf, fake)
    res: dict = {"n": n}
    for j, a in enumerate(ds.schema.attributes):
        acc_r = float((p_real[:, j] == real_lab[:, j]).mean())
        acc_f = float((p_fake[:, j] == real_lab[:, j]).mean())
        res[f"acc_real/{a.name}"] = round(acc_r, 4)
        res[f"acc_gen/{a.name}"] = round(acc_f, 4)
        res[f"acc_ratio/{a.name}"] = round(acc_f / max(acc_r, 1e-9), 4)
        if len(a.values) <= PER_VALUE_MAX:  # which values are learnt (the mean hides rare ones)
            for v, value in enumerate(a.values):
                m = real_lab[:, j] == v
                if m.any():
                    res[f"acc_real/{a.name}={value}"] = round(float((p_real[m, j] == v).mean()), 4)
                    res[f"acc_gen/{a.name}={value}"] = round(float((p_fake[m, j] == v).mean()), 4)
                    res[f"count/{a.name}={value}"] = int(m.sum())
    train_idx = np.random.default_rng(seed).choice(len(ds) - hold, size=n, replace=False)
    _, f_real2 = predict(clf, ds.images[np.sort(train_idx)])
    res["fd_gen_real"] = round(frechet(f_fake, f_real), 3)
    res["fd_real_real"] = round(frechet(f_real2, f_real), 3)
    res["diversity_ratio"] = round(mean_pairwise(f_fake) / mean_pairwise(f_real), 4)
    # Intra-attribute diversity: up to 50 attribute sets x 8 seeds.
    k = min(50, n)
    sets = np.repeat(real_lab[:k], 8, axis=0)
    imgs = generate_for(G, sets, seed + 1).reshape(k, 8, -1).astype(np.float32)
    d = np.abs(imgs[:, :, None] - imgs[:, None, :]).mean(-1)  # (k, 8, 8)
    res["intra_attr_pixel_l1"] = round(float(d.sum() / (k * 8 * 7) / 255), 4)
    G.train(was_training)
    return res


def periodic(G: nn.Module, ds: Dataset) -> dict | None:
    """The cheap version run during training: 500 images, only if a classifier is cached."""
    try:
        return evaluate(G, ds, n=500, train_if_missing=False)
    except Exception as e:  # metrics must never kill a training run
        log.warning("periodic metrics failed: %s", e)
        return None
