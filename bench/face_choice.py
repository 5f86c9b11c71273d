"""Which eyes / mouth value serves each face state (issue 9; docs/avatar.md, "Face states").

    python bench/face_choice.py [--model FILE] [--seeds 20000:20100] [--states happy,sad,...]

For every seed (default 20000-20099, held out from the tests' 9000-9049) and every eyes and mouth
value: the value drawn as a face-sheet variant (``generate_regions``), its patches
(``faces.patch_image``: both eyes, or the mouth) pasted on the neutral face as the head's front
shows it (``atlas.front_image``), read by the eval classifier (tests/data/eval_classifier.safetensors).
The same is done with DiceBear's own drawings of the same seeds and attributes. Per state
(``faces.READS_AS``) and value that shows it, the share of seeds read as the state, counted where the
DiceBear drawing of that value reads as the state (sunglasses hide eyes on real art too), and the
value in use today (``faces.VARIANTS``) marked. This is the 2D patch only: the 3D head of
tests/test_avatar_expressions.py reads a few points lower (texture filtering on the curved front).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def pasted(source: object, seeds: list[int], attrs: list[dict], overrides: list[dict]) -> np.ndarray:
    """(N, V, 128, 128, 4): each seed's neutral front with the patches of each override pasted."""
    from chibi_meta.avatar import faces
    from chibi_meta.avatar.atlas import front_image

    tex = np.asarray(source.generate(seeds, attrs))  # type: ignore[attr-defined]
    regions = source.generate_regions(seeds, attrs, overrides, faces.SHEET_BOX)  # type: ignore[attr-defined]
    sy, sx = faces.SHEET_BOX[0], faces.SHEET_BOX[2]
    out = np.zeros((len(seeds), len(overrides), *tex.shape[1:]), np.uint8)
    for i in range(len(seeds)):
        front = front_image(tex[i])
        out[i, :, :, :, :3] = front
        out[i, :, :, :, 3] = tex[i, :, :, 3]
        for j, o in enumerate(overrides):
            for part in faces.parts_drawn([o]):
                y0, y1, x0, x1 = faces.PARTS[part]
                var = regions[i, j, y0 - sy : y1 - sy, x0 - sx : x1 - sx]
                out[i, j, y0:y1, x0:x1, :3] = faces.patch_image(front, var, part)
    return out


def main(argv: list[str] | None = None) -> int:
    from chibi_meta.avatar import faces
    from chibi_meta.avatar.export import DicebearSource
    from chibi_meta.data import attributes
    from chibi_meta.gan import checkpoint
    from chibi_meta.gan.api import TextureGenerator
    from chibi_meta.gan.metrics import Classifier, predict

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--seeds", default="20000:20100", help="first:end (end excluded)")
    ap.add_argument("--states", default=None, help="comma-separated faces.READS_AS states (default: all)")
    ap.add_argument("--batch", type=int, default=20)
    args = ap.parse_args(argv)
    a, b = (int(x) for x in args.seeds.split(":"))
    seeds = list(range(a, b))
    states = args.states.split(",") if args.states else list(faces.READS_AS)
    unknown = sorted(set(states) - set(faces.READS_AS))
    if unknown:
        ap.error(f"unknown states {unknown}; allowed: {', '.join(faces.READS_AS)}")
    values = sorted({(k, v) for s in states for k, vs in faces.READS_AS[s].items() for v in vs})
    overrides = [{k: v} for k, v in values]
    schema = attributes.ADVENTURER
    col = {x.name: j for j, x in enumerate(schema.attributes)}
    names = {x.name: x.values for x in schema.attributes}
    tensors, meta = checkpoint.load(ROOT / "tests" / "data" / "eval_classifier.safetensors")
    clf = Classifier(tuple(meta["sizes"]))
    clf.load_state_dict(tensors)
    clf.eval()
    gen = TextureGenerator.load(args.model)
    reads: dict[str, np.ndarray] = {}
    for name, source in (("gan", gen), ("real", DicebearSource())):
        chunks = []
        for i in range(0, len(seeds), args.batch):
            chunk = seeds[i : i + args.batch]
            attrs = [source.resolve(s, None) for s in chunk]
            imgs = pasted(source, chunk, attrs, overrides)
            p, _ = predict(clf, imgs.reshape(-1, *imgs.shape[2:]))
            chunks.append(p.reshape(len(chunk), len(overrides), -1))
        reads[name] = np.concatenate(chunks)  # (N, V, A) class indices
        print(f"{name}: {len(seeds)} seeds x {len(overrides)} values read", flush=True)
    for s in states:
        for attr, shows in faces.READS_AS[s].items():
            parts = [(p, v) for p, v, _ in faces.TARGETS[s] if (p == "mouth") == (attr == "mouth")]
            in_use = {faces.VARIANTS[v].get(attr) for _, v in parts}
            ok_idx = [names[attr].index(v) for v in shows]
            rows = []
            for v in sorted(shows):
                j = overrides.index({attr: v})
                g = np.isin(reads["gan"][:, j, col[attr]], ok_idx)
                r = np.isin(reads["real"][:, j, col[attr]], ok_idx)
                exact = float((reads["gan"][:, j, col[attr]] == names[attr].index(v))[r].mean()) if r.any() else 0.0
                share = float(g[r].mean()) if r.any() else 0.0
                rows.append((share, v, int(r.sum()), exact))
            for share, v, n_real, exact in sorted(rows, reverse=True):
                mark = " *" if v in in_use else ""
                print(f"{s:10s} {attr:5s} {v}: reads as the state {share:4.0%} of {n_real:3d} seeds whose real "
                      f"art does (as {v} {exact:4.0%}){mark}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
