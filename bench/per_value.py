"""Per-value accuracy of the face-sheet values (issue 9): how often the eval classifier reads an
eyes or mouth value on images the generator drew with it, as a share of how often it reads it on
real DiceBear art with that value.

    python bench/per_value.py [--model FILE] [--data data/adventurer128] [--n 400] [--values eyes=eyes11,...]

Generated: ``--n`` label sets of the dataset's held-out tail (from image 1000 on; ``--split sel``
takes them from image 0 with another seed, the split used to choose between runs), the value
forced, one latent each (seed 30000, or 20000 for ``sel``). Real: the held-out images that have
the value (about 77 per eyes value, 67 per mouth value, of 2 000). The eval classifier is the one
the tests use (tests/data/eval_classifier.safetensors). Default values: every value a face sheet
draws (chibi_meta.avatar.faces.VARIANTS). With each value, "glasses kept": how often the glasses
of the label sets that have glasses (about 100 of 400) are still read as labelled, beside the
same share with every value as labelled (a tuned eyes value must not win by dropping sunglasses).

Also per value, on the first ``--colour`` (default 100) of those label sets: **off-hue pixels**
(``chibi_meta.gan.metrics.off_hue_pixels``), the saturated pixels inside the value's footprint
whose hue DiceBear's own drawing of the same face (the same label set and options, rendered) does
not have there, in blobs of 3 or more (one-pixel fringes along outlines do not count), per face,
and the share of faces with 3 or more: a tint such as green on a brown lip line. DiceBear's
drawings have none by construction. ``--colour 0`` skips it (it renders about 4 DiceBear drawings
per face: ~25 s per 1 000 faces on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from chibi_meta.avatar import faces
    from chibi_meta.data.store import load_dataset
    from chibi_meta.gan import checkpoint
    from chibi_meta.gan.api import TextureGenerator
    from chibi_meta.gan.metrics import Classifier, generate_for, off_hue_pixels, predict
    from chibi_meta.gan.redraw import dicebear_pair

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(ROOT / "data" / "adventurer128"))
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--split", choices=("rep", "sel"), default="rep")
    ap.add_argument("--values", default=None, help="attr=value,... (default: the face-sheet values)")
    ap.add_argument("--colour", type=int, default=100, help="faces per value for the off-hue figure (0: skip)")
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    tensors, meta = checkpoint.load(ROOT / "tests" / "data" / "eval_classifier.safetensors")
    clf = Classifier(tuple(meta["sizes"]))
    clf.load_state_dict(tensors)
    clf.eval()
    if args.values:
        values = [tuple(v.split("=", 1)) for v in args.values.split(",")]
    else:
        values = sorted({(k, v) for o in faces.VARIANTS for k, v in o.items()})
    names = [a.name for a in ds.schema.attributes]
    hold, himg = ds.labels[-2000:], ds.images[-2000:]
    p_real, _ = predict(clf, himg)
    off, seed = (0, 20000) if args.split == "sel" else (1000, 30000)
    gen = TextureGenerator.load(args.model)
    g_col = names.index("glasses") if "glasses" in names else None
    base = hold[off : off + args.n]  # the label sets every value is forced into
    if g_col is not None:  # what forcing a value costs the glasses over it: the same label sets, unforced
        worn = base[:, g_col] != 0
        p0, _ = predict(clf, generate_for(gen.G.eval(), base, seed=seed))
        g_base = float((p0[worn, g_col] == base[worn, g_col]).mean())
        print(f"glasses read as labelled on the {int(worn.sum())} label sets with glasses, values as labelled: "
              f"{g_base:.1%}")  # fmt: skip
    rows = []
    first = len(ds) - len(hold) + off  # the dataset row (DiceBear seed) of base[0]
    rng = np.random.default_rng(seed)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ProcessPoolExecutor(os.cpu_count() or 1)) if args.colour > 0 else None
        for attr, value in values:
            c = names.index(attr)
            k = ds.schema.attributes[c].values.index(value)
            real = float((p_real[hold[:, c] == k, c] == k).mean())
            lab = base.copy()
            lab[:, c] = k
            images = generate_for(gen.G.eval(), lab, seed=seed)
            p, _ = predict(clf, images)
            drawn = float((p[:, c] == k).mean())
            rows.append((value, drawn, real))
            kept = "" if g_col is None else f", glasses kept {float((p[worn, g_col] == lab[worn, g_col]).mean()):.0%}"
            hue = ""
            if pool is not None:
                m = min(args.colour, len(lab))
                jobs = [(ds.size, first + i, attr, k, *(int(x) for x in rng.integers(ds.schema.sizes[c], size=2)))
                        for i in range(m)]  # fmt: skip
                px = np.array([off_hue_pixels(images[i], real_img, mask)
                               for i, (real_img, mask) in enumerate(pool.map(dicebear_pair, jobs, chunksize=8))])
                hue = f", off-hue px/face {px.mean():.2f} ({np.mean(px >= 3):.0%} of {m} faces >= 3)"
            print(f"{attr}={value}: generated {drawn:.1%}, real {real:.1%}, share {drawn / real:.0%}{kept}{hue}",
                  flush=True)  # fmt: skip
    low = [f"{v} {d / r:.0%}" for v, d, r in rows if d / r < 0.9]
    print(f"model {gen.model_id}: {len(rows) - len(low)} of {len(rows)} values >= 90 % of real; below: "
          f"{', '.join(low) or 'none'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
