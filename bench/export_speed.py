"""Avatar export speed: avatars/s for GLB and VRM at 256 and 512 px, split into generation, packing
(atlas composition + GLB/VRM assembly) and encoding (the texture image), plus file sizes.

    python bench/export_speed.py [--n 200] [--formats png,jpeg,webp] [--model PATH]

Textures come from the shipped generator when it exists, else from the DiceBear renderer (the
built-in dataset), exactly as `chibi-meta export` picks them. Single process, wall-clock times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from chibi_meta.avatar import atlas, build_avatar, gltf
from chibi_meta.avatar.export import BATCH, open_texture_source, provenance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="avatars per configuration")
    ap.add_argument("--formats", default="png,jpeg,webp", help="texture formats to measure")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    src = open_texture_source(args.model)
    gltf.procedural_base()  # built once per process, like a server would
    seeds = list(range(args.n))
    # generation: textures + attributes, in the export's batch size
    t0 = time.perf_counter()
    attrs = [src.resolve(s, None) for s in seeds]
    tex = np.concatenate(
        [src.generate(seeds[i : i + BATCH], attrs[i : i + BATCH]) for i in range(0, len(seeds), BATCH)]
    )
    gen_s = (time.perf_counter() - t0) / len(seeds)
    print(f"texture source: {src.model_id}; {len(seeds)} avatars per row; generation {gen_s * 1e3:.2f} ms/avatar")
    print(f"{'format':6} {'tex':>4} {'img':5} | {'gen ms':>6} {'pack ms':>7} {'enc ms':>6} | "
          f"{'avatars/s':>9} {'packer-only/s':>13} | {'KB mean':>7} {'KB max':>6}")  # fmt: skip
    for fmt in ("glb", "vrm"):
        for size in (256, 512):
            for tf in args.formats.split(","):
                # encoding alone (the image part of build_avatar), measured on the composed atlases
                comp = [atlas.compose(t, a, size) for t, a in zip(tex[:50], attrs[:50], strict=True)]
                t0 = time.perf_counter()
                for c in comp:
                    atlas.encode(c, tf)
                    if fmt == "vrm":
                        atlas.encode(atlas.thumbnail(tex[0], attrs[0]), "jpeg" if tf == "jpeg" else "png")
                enc_s = (time.perf_counter() - t0) / len(comp)
                sizes = []
                t0 = time.perf_counter()
                for s, t, a in zip(seeds, tex, attrs, strict=True):
                    data = build_avatar(t, a, fmt=fmt, texture_size=size, texture_format=tf,
                                        provenance=provenance(src, s, a))  # fmt: skip
                    sizes.append(len(data))
                build_s = (time.perf_counter() - t0) / len(seeds)
                pack_s = max(build_s - enc_s, 0.0)
                total = gen_s + build_s
                kb_mean, kb_max = statistics.mean(sizes) / 1024, max(sizes) / 1024
                print(
                    f"{fmt:6} {size:4d} {tf:5} | {gen_s * 1e3:6.2f} {pack_s * 1e3:7.2f} {enc_s * 1e3:6.2f} | "
                    f"{1 / total:9.1f} {1 / build_s:13.1f} | {kb_mean:7.1f} {kb_max:6.1f}"
                )


if __name__ == "__main__":
    main()
