"""Model cards: what a generator file was trained on, how, and how well it does."""

from __future__ import annotations

from collections.abc import Mapping

from chibi_meta.gan.api import TextureGenerator

TARGETS = {"hair_color": 0.90, "skin": 0.90, "glasses": 0.85, "hair_style": 0.50}


def metrics_table(res: Mapping[str, object], schema_names: tuple[str, ...]) -> str:
    """Markdown table of attribute accuracies and the other figures."""
    lines = ["| attribute | real (ceiling) | generated | generated / ceiling | target |",
             "| --- | --- | --- | --- | --- |"]
    for name in schema_names:
        r, g, q = (res.get(f"{k}/{name}") for k in ("acc_real", "acc_gen", "acc_ratio"))
        if r is None:
            continue
        target = f">= {TARGETS[name]:.0%}" if name in TARGETS else "-"
        lines.append(f"| {name} | {r:.1%} | {g:.1%} | {q:.1%} | {target} |")
    lines += ["", "| figure | value |", "| --- | --- |",
              f"| Fréchet distance, generated vs real | {res.get('fd_gen_real')} |",
              f"| Fréchet distance, real vs real (floor) | {res.get('fd_real_real')} |",
              f"| diversity ratio (generated / real) | {res.get('diversity_ratio')} |",
              f"| intra-attribute pixel L1 | {res.get('intra_attr_pixel_l1')} |",
              f"| images per side | {res.get('n')} |"]
    per_value = [(k.split("/", 1)[1], v) for k, v in res.items() if k.startswith("acc_gen/") and "=" in k]
    if per_value:
        lines += ["", "Per value (attributes with few values; images = held-out images with that value):", "",
                  "| attribute = value | images | real | generated |", "| --- | --- | --- | --- |"]
        for key, g in per_value:
            name, value = key.split("=", 1)
            lines.append(f"| {name} = {value} | {res.get(f'count/{key}')} | {res.get(f'acc_real/{key}', 0):.1%} "
                         f"| {g:.1%} |")
    return "\n".join(lines)


HISTORY = "\n## Training history"


def keep_history(card: str, old: str | None) -> str:
    """``card`` plus the hand-written "## Training history" section (and all after it) of ``old``.

    A run's history (which options changed at which kimg, and why) is not in the model file, so
    rewriting a card with new figures keeps it.
    """
    if not old or HISTORY not in old:
        return card
    return card.rstrip("\n") + "\n" + old[old.index(HISTORY):]


def _tuned(meta: Mapping[str, object]) -> str:
    """The card's line on a conditioning fine-tune (``chibi-meta tune``), if the model had one."""
    values = meta.get("tuned_values")
    if not values:
        return ""
    return (f"- Then `chibi-meta tune` (docs/gan.md, \"Conditioning fine-tune\") from `{meta.get('tuned_from')}`: "
            f"the embeddings of {', '.join(map(str, values))} (32 numbers each) were optimised; every other "  # type: ignore[arg-type]
            "weight is unchanged.\n")


def _redrawn(meta: Mapping[str, object]) -> str:
    """The card's lines on the drawing fine-tunes (``chibi-meta redraw``) since training, in order."""
    lines = []
    for r in meta.get("redraw_history") or []:  # type: ignore[attr-defined]
        weights = f", pairs weighted {r['weights']}" if r.get("weights") else ""
        inside = f", inside weight {r['inside']:g}" if r.get("inside") else ""
        note = f" ({r['note']})" if r.get("note") else ""
        what = f"{r['steps']} steps on {r['pairs']} DiceBear pairs of {', '.join(r['attrs'])}{weights}{inside}{note}"
        lines.append(f"- Then `chibi-meta redraw` (docs/gan.md, \"Drawing fine-tune\") from `{r['from']}`: "
                     f"every weight, {what}.\n")
    return "".join(lines)


def model_card(gen: TextureGenerator, res: Mapping[str, object]) -> str:
    m = gen.meta
    hours = float(m.get("train_seconds", 0)) / 3600
    cfg = gen.G.cfg
    params = sum(p.numel() for p in gen.G.parameters())
    return f"""# Model card: `{gen.model_id}`

The generator shipped in `assets/model/generator.safetensors` (safetensors, fp16 weights, loaded
as float32; the file name's sha256 prefix is the model id). It paints a {cfg.resolution}x{cfg.resolution}
RGBA avatar face texture from a seed and six attributes.

## Data and attribution
Trained on {m.get('dataset_fingerprint', '?')} (the built-in dataset: DiceBear `adventurer`, rendered
offline by `chibi-meta dataset build --style adventurer --count 40000 --size 128`).

> {gen.attribution}

Licence of the data and therefore of the model's outputs: {m.get('license', '?')} ({m.get('license_url', '')}).
Give this attribution wherever you show or ship generated avatars; chibi_meta writes it into every
exported GLB/VRM.

## Training
- {m.get('kimg')} thousand real images shown, {hours:.2f} h of training on `{m.get('device')}`
  ({m.get('world_size', 1)} process), batch 32, Adam lr 2e-4 betas (0.5, 0.99), R1 gamma 1 every
  16 steps, DiffAugment translation + cutout, EMA half-life 10 kimg (these weights).
{_tuned(m)}{_redrawn(m)}- Generator: {params / 1e6:.2f} M parameters, widths {list(cfg.g_channels)}, z {cfg.z_dim}-d, \
w {cfg.w_dim}-d.
  Architecture and loss: docs/gan.md.

## Metrics
`chibi-meta eval --data data/adventurer128` (how each is computed: docs/gan.md#metrics):

{metrics_table(res, gen.schema.names)}

## Intended use and limits
Cute cartoon avatar faces for games and virtual worlds. Attributes outside the six conditioned
ones (eyebrows, earrings, freckles, blush, mustache) come from the seed. The model only knows the
`adventurer` style; faces are not photographs of anyone.
"""
