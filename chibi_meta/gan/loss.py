"""GAN losses: the non-saturating logistic loss with lazy R1 regularisation.

    L_G = -log D(G(z))                    = softplus(-D(G(z)))
    L_D = -[log D(x) + log(1 - D(G(z)))]  = softplus(-D(x)) + softplus(D(G(z)))
    AUX = cross-entropy of D's per-attribute classifier heads: on real images for D, on fakes
          (against the requested attributes) for G, weighted by ``aux_weight``. With class weights
          (``balanced_aux``), D's real-image term weights each value by the inverse of its frequency
          in the data, so a value seen in 5 % of the images counts as much as one seen in 75 %.
    R1  = gamma / 2 * E ||grad_x D(x)||^2, applied every ``r1_every`` steps, scaled by it (lazy
          regularisation, Karras et al. 2020), on real images only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def aux_loss(logits: list[torch.Tensor], labels: torch.Tensor,
             class_weights: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Mean over attributes of the cross-entropy of the auxiliary classifier heads.

    ``class_weights[i]`` (one weight per value of attribute i) scales each sample's term; the
    result is a plain mean over the batch, so weights with mean 1 under the data keep the scale.
    """
    if not logits:
        return labels.new_zeros((), dtype=torch.float32)
    total = labels.new_zeros((), dtype=torch.float32)
    for i, lg in enumerate(logits):
        ce = F.cross_entropy(lg.float(), labels[:, i], reduction="none")
        if class_weights is not None:
            ce = ce * class_weights[i][labels[:, i]]
        total = total + ce.mean()
    return total / len(logits)


def inverse_frequency_weights(labels: torch.Tensor, sizes: list[int] | tuple[int, ...]) -> list[torch.Tensor]:
    """Per attribute, weight 1 / (K * p_value), so the expected weight under the data is 1.

    A value absent from ``labels`` gets weight 0 (it never occurs as a target anyway).
    """
    out = []
    for i, k in enumerate(sizes):
        p = torch.bincount(labels[:, i].long(), minlength=k).double() / max(len(labels), 1)
        w = torch.where(p > 0, 1.0 / (k * p.clamp_min(1e-12)), torch.zeros_like(p))
        out.append(w.float())
    return out


def r1_penalty(d_fn: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (logits, mean squared gradient norm) for real images; ``real`` is detached here."""
    real = real.detach().requires_grad_(True)
    logits = d_fn(real)[0]
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return logits, grad.square().sum(dim=(1, 2, 3)).mean()
