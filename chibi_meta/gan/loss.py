"""GAN losses: the non-saturating logistic loss with lazy R1 regularisation.

    L_G = -log D(G(z))                    = softplus(-D(G(z)))
    L_D = -[log D(x) + log(1 - D(G(z)))]  = softplus(-D(x)) + softplus(D(G(z)))
    AUX = cross-entropy of D's per-attribute classifier heads: on real images for D, on fakes
          (against the requested attributes) for G, weighted by ``aux_weight``.
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


def aux_loss(logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Mean over attributes of the cross-entropy of the auxiliary classifier heads."""
    if not logits:
        return labels.new_zeros((), dtype=torch.float32)
    return sum(F.cross_entropy(lg.float(), labels[:, i]) for i, lg in enumerate(logits)) / len(logits)


def r1_penalty(d_fn: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (logits, mean squared gradient norm) for real images; ``real`` is detached here."""
    real = real.detach().requires_grad_(True)
    logits = d_fn(real)[0]
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return logits, grad.square().sum(dim=(1, 2, 3)).mean()
