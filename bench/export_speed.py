"""Avatar export speed: the per-avatar split generate / face sheet / head / body+rig / atlas / encode,
avatars/s end to end for GLB and VRM at each texture size and format, file sizes, the head build's
cost next to the generator's with one thread each (issue 8: head / generator <= 1.5), and a whole
avatar with its face sheet next to one with the neutral face only (issue 9: <= 2.5).

    python bench/export_speed.py [--n 64] [--repeat 3] [--passes 24] [--formats png,jpeg,webp]
                                 [--sizes 256,512] [--outfit NAME] [--model PATH]

Textures come from the shipped generator when it exists, else from the DiceBear renderer, exactly
as `chibi-meta export` picks them. Single process, wall-clock times; every figure is a median over
runs (see bench/README.md), so compare them as ratios within one run, not across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chibi_meta.avatar import OUTFITS, atlas, build_avatar, choose_outfit, gltf, procedural, vrm
from chibi_meta.avatar.export import BATCH, face_sheets, open_texture_source, provenance
from chibi_meta.avatar.pack import THUMBNAIL_SIZE

FMTS = ("glb", "vrm")


def _timed(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, process CPU seconds) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    r = fn(*args, **kw)
    return r, time.perf_counter() - t0, time.process_time() - c0


def _med(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _textures(src: Any, seeds: Sequence[int], outfit: str | None) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Textures and full attributes (outfit included) of ``seeds``, generated in the export's batches."""
    pkg = {"outfit": outfit} if outfit else {}
    attrs = [src.resolve(s, None) for s in seeds]
    tex = np.concatenate([src.generate(list(seeds[i : i + BATCH]), attrs[i : i + BATCH])
                          for i in range(0, len(seeds), BATCH)])  # fmt: skip
    return tex, [{**a, "outfit": choose_outfit(s, pkg)} for s, a in zip(seeds, attrs, strict=True)]


def _sheets(src: Any, seeds: Sequence[int], attrs: Sequence[dict[str, str]]) -> list[Any]:
    """Each avatar's face sheet (``export.face_sheets``, in the export's batches; None where the
    source cannot draw one), from the generator's attributes (the outfit is packaging)."""
    gan = [{k: v for k, v in a.items() if k != "outfit"} for a in attrs]
    return [x for i in range(0, len(seeds), BATCH)
            for x in face_sheets(src, list(seeds[i : i + BATCH]), gan[i : i + BATCH])]  # fmt: skip


def _assemble(base: Any, image: np.ndarray, texture: np.ndarray, attrs: dict[str, str], prov: dict,
              fmt: str, tf: str) -> bytes:  # fmt: skip
    """The encode step of build_avatar: atlas (and VRM thumbnail) encoded, VRM meta, GLB assembled.

    The tail of chibi_meta.avatar.pack.build_avatar, with its public functions. What build_avatar
    does beyond the timed stages (morph targets, face patches, ...) shows as its "other" column.
    """
    prov = {**prov, "attributes": dict(sorted(attrs.items()))}
    prov.setdefault("base_mesh", base.source)
    name = f"chibi-{prov['seed']}"
    images = [(atlas.encode(image, tf), tf)]
    extensions = None
    if fmt == "vrm":
        thumb_fmt = "jpeg" if tf == "jpeg" else "png"
        images.append((atlas.encode(atlas.thumbnail(texture, attrs, THUMBNAIL_SIZE), thumb_fmt), thumb_fmt))
        extensions = {"VRMC_vrm": vrm.vrmc_vrm(base, name=name, thumbnail_image=1, provenance=prov)}
    alpha = "OPAQUE" if image.shape[2] == 3 else base.alpha_mode
    return gltf.write_glb(base, images, texture_format=tf, alpha_mode=alpha, extras={"chibi_meta": prov},
                          name=name, extensions=extensions)  # fmt: skip


def head_vs_generator(src: Any, passes: int, seed0: int) -> dict[str, float]:
    """Head build and generator per avatar, one thread each, interleaved pass by pass.

    Each of ``passes`` generates the generator's chunk rows (``chibi_meta.gan.api.CHUNK``: a pass is
    never smaller), then builds the head of each texture. Medians over passes and heads.
    """
    try:
        import torch
    except ImportError:  # the DiceBear source needs no torch
        torch = None  # type: ignore[assignment]
    rows = 1
    if hasattr(src, "G"):
        from chibi_meta.gan.api import CHUNK

        rows = int(getattr(src, "chunk", CHUNK))
    prev = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    try:
        gen_w, gen_c, head_w, head_c = [], [], [], []
        seeds = [seed0 + i for i in range(rows)]
        src.generate(seeds, [src.resolve(s, None) for s in seeds])  # warm (first pass allocates)
        for r in range(passes):
            seeds = [seed0 + rows * (r + 1) + i for i in range(rows)]
            attrs = [src.resolve(s, None) for s in seeds]
            tex, w, c = _timed(src.generate, seeds, attrs)
            gen_w.append(w / rows)
            gen_c.append(c / rows)
            for t in tex:
                _, w, c = _timed(procedural.avatar_head, np.ascontiguousarray(t))
                head_w.append(w)
                head_c.append(c)
    finally:
        if torch and prev is not None:
            torch.set_num_threads(prev)
    return {"rows": rows, "gen_ms": _med(gen_w) * 1e3, "head_ms": _med(head_w) * 1e3,
            "gen_cpu_ms": _med(gen_c) * 1e3, "head_cpu_ms": _med(head_c) * 1e3,
            "gen_cpu_share": sum(gen_c) / sum(gen_w), "head_cpu_share": sum(head_c) / sum(head_w)}  # fmt: skip


def split_run(src: Any, seeds: Sequence[int], outfit: str | None, sizes: Sequence[int],
              tfs: Sequence[str]) -> dict[Any, float]:  # fmt: skip
    """One run of the split: mean seconds per avatar of each stage."""
    (tex, attrs), gen_s, _ = _timed(_textures, src, seeds, outfit)
    _, sheet_s, _ = _timed(_sheets, src, seeds, attrs)
    acc: dict[Any, float] = {"generate": gen_s, "face sheet": sheet_s}
    for s, t, a in zip(seeds, tex, attrs, strict=True):
        t = np.ascontiguousarray(t)
        head, w, _ = _timed(procedural.avatar_head, t)
        acc["head"] = acc.get("head", 0.0) + w
        base, w, _ = _timed(procedural.with_head, procedural.outfit_base(a["outfit"]), head)
        acc["body+rig"] = acc.get("body+rig", 0.0) + w
        prov = provenance(src, s, a)
        for size in sizes:
            image, w, _ = _timed(atlas.compose_head, t, a, size, head.mask)
            acc[("atlas", size)] = acc.get(("atlas", size), 0.0) + w
            for fmt in FMTS:
                for tf in tfs:
                    _, w, _ = _timed(_assemble, base, image, t, a, prov, fmt, tf)
                    acc[("encode", fmt, size, tf)] = acc.get(("encode", fmt, size, tf), 0.0) + w
    return {k: v / len(seeds) for k, v in acc.items()}


def end_to_end_run(src: Any, seeds: Sequence[int], outfit: str | None, fmt: str, size: int,
                   tf: str, neutral: bool = False) -> tuple[float, float, list[int]]:  # fmt: skip
    """avatars/s of the export pipeline (textures and face sheets in export batches, build_avatar with
    every morph-target set), build_avatar's mean seconds, file sizes. ``neutral``: the neutral face
    only (no face sheet, ``morph_targets=["none"]``)."""
    t0 = time.perf_counter()
    tex, attrs = _textures(src, seeds, outfit)
    sheets = [None] * len(seeds) if neutral else _sheets(src, seeds, attrs)
    morphs = {"morph_targets": ["none"]} if neutral else {}
    build, sizes = 0.0, []
    for s, t, a, sh in zip(seeds, tex, attrs, sheets, strict=True):
        data, w, _ = _timed(build_avatar, np.ascontiguousarray(t), a, fmt=fmt, texture_size=size,
                            texture_format=tf, provenance=provenance(src, s, a), face_sheet=sh,
                            **morphs)  # fmt: skip
        build += w
        sizes.append(len(data))
    return len(seeds) / (time.perf_counter() - t0), build / len(seeds), sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="avatars per run (each run has fresh seeds)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (each runs every measurement once)")
    ap.add_argument("--passes", type=int, default=24, help="generator passes of the one-thread head comparison")
    ap.add_argument("--formats", default="png,jpeg,webp", help="texture formats to measure")
    ap.add_argument("--sizes", default="256,512", help="texture sizes to measure")
    ap.add_argument("--outfit", default=None, help="one outfit for every avatar (default: drawn per seed)")
    ap.add_argument("--model", default=None)
    args = ap.parse_args(argv)
    tfs = args.formats.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    for s in sizes:
        atlas.check_texture_options(s, "png")
    for tf in tfs:
        atlas.check_texture_options(256, tf)
    if args.outfit:
        choose_outfit(0, {"outfit": args.outfit})
    src = open_texture_source(args.model)
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        threads = 0
    print(f"texture source: {src.model_id}; {args.n} avatars per run, {args.repeat} rounds; torch threads {threads}; "
          f"{os.cpu_count()} CPUs; load average {_load()}", flush=True)  # fmt: skip

    # the outfit bodies are built once per process (a server does it at warm-up): not in the figures
    outfits = [args.outfit] if args.outfit else list(OUTFITS)
    built = [f"{o} {_timed(procedural.outfit_base, o)[1]:.2f} s" for o in outfits]
    print(f"outfit bases (procedural.outfit_base, once per outfit per process, not in the figures): "
          f"{', '.join(built)}", flush=True)  # fmt: skip
    tex, attrs = _textures(src, list(range(4)), args.outfit)  # warm the generator, the encoders, scipy
    sheet = _sheets(src, [0], attrs[:1])[0]
    for fmt in FMTS:
        for tf in tfs:
            build_avatar(tex[0], attrs[0], fmt=fmt, texture_size=sizes[0], texture_format=tf,
                         provenance=provenance(src, 0, attrs[0]), face_sheet=sheet)  # fmt: skip

    seed = [1_000_000]

    def fresh(n: int) -> list[int]:
        seed[0] += n
        return list(range(seed[0] - n, seed[0]))

    # 1. head build next to the generator, one thread each
    hv = head_vs_generator(src, args.passes, 500_000)
    ratio = hv["head_ms"] / hv["gen_ms"]
    print(f"\nhead build vs generator, one thread each (torch.set_num_threads(1)), medians of {args.passes} passes:")
    print(f"  generator: a pass of {hv['rows']} rows / {hv['rows']} = {hv['gen_ms']:.2f} ms per avatar "
          f"(CPU {hv['gen_cpu_ms']:.2f} ms, CPU/wall {hv['gen_cpu_share']:.2f})")  # fmt: skip
    print(f"  head (procedural.avatar_head): {hv['head_ms']:.2f} ms per avatar "
          f"(CPU {hv['head_cpu_ms']:.2f} ms, CPU/wall {hv['head_cpu_share']:.2f})")  # fmt: skip
    print(f"  RATIO head / generator = {ratio:.2f} (by CPU time {hv['head_cpu_ms'] / hv['gen_cpu_ms']:.2f}); "
          f"issue 8 target <= 1.5: {'met' if ratio <= 1.5 else 'MISSED'}", flush=True)  # fmt: skip

    # 2. and 3., in rounds: each round runs the split once and every format once (fresh seeds each
    # time), so load that changes during the run touches every row alike; medians over rounds
    configs = [(fmt, size, tf) for fmt in FMTS for size in sizes for tf in tfs]
    runs: list[dict[Any, float]] = []
    e2e: dict[tuple[str, int, str], list[tuple[float, float, list[int]]]] = {c: [] for c in configs}
    neutral: list[tuple[float, float, list[int]]] = []
    for i in range(args.repeat):
        runs.append(split_run(src, fresh(args.n), args.outfit, sizes, tfs))
        for c in configs:
            e2e[c].append(end_to_end_run(src, fresh(args.n), args.outfit, *c))
        neutral.append(end_to_end_run(src, fresh(args.n), args.outfit, *configs[0], neutral=True))
        print(f"  round {i + 1}/{args.repeat} done; load average {_load()}", flush=True)
    split = {k: _med([r[k] for r in runs]) * 1e3 for k in runs[0]}
    print(f"\nper-avatar split, ms (median of {args.repeat} rounds of the mean over {args.n} avatars; "
          f"generation at {threads} torch threads in batches of {BATCH}):")  # fmt: skip
    atl = ", ".join(f"{s} px {split[('atlas', s)]:.2f}" for s in sizes)
    print(f"  generate {split['generate']:.2f} | face sheet (export.face_sheets) {split['face sheet']:.2f} "
          f"= {split['face sheet'] / split['generate']:.2f}x generate | head {split['head']:.2f} | "
          f"body+rig {split['body+rig']:.2f} | "
          f"atlas (atlas.compose_head) {atl} | encode (atlas.encode + gltf.write_glb) per row below", flush=True)
    print("\nper format, ms: encode = that step of the split; build = build_avatar's own time (end-to-end runs);\n"
          "other = build - head - body+rig - atlas - encode; avatars/s = textures + face sheets + build_avatar, "
          "end to end")
    print(f"{'format':6} {'tex':>4} {'img':5} | {'encode':>6} {'build':>6} {'other':>6} | "
          f"{'avatars/s (rounds)':>24} | {'KB mean':>7} {'KB max':>6}")  # fmt: skip
    for (fmt, size, tf), rs in e2e.items():
        rates = [r[0] for r in rs]
        build = _med([r[1] for r in rs]) * 1e3
        allsizes = [x for r in rs for x in r[2]]
        enc = split[("encode", fmt, size, tf)]
        other = build - split["head"] - split["body+rig"] - split[("atlas", size)] - enc
        runs_s = " ".join(f"{x:.1f}" for x in rates)
        print(f"{fmt:6} {size:4d} {tf:5} | {enc:6.2f} {build:6.2f} {other:6.2f} | "
              f"{_med(rates):7.1f} ({runs_s:>14}) | {statistics.mean(allsizes) / 1024:7.1f} "
              f"{max(allsizes) / 1024:6.1f}")  # fmt: skip
    full, plain = _med([r[0] for r in e2e[configs[0]]]), _med([r[0] for r in neutral])
    ratio9 = plain / full
    fmt0, size0, tf0 = configs[0]
    print(f"\nwhole avatar with its face sheet vs the neutral face only ({fmt0} {size0} px {tf0}, end to end, "
          f"median of {args.repeat} rounds):")  # fmt: skip
    print(f"  with face sheet and every morph-target set: {1e3 / full:.2f} ms per avatar ({full:.1f}/s); "
          f"neutral only (no face sheet, morph_targets=['none']): {1e3 / plain:.2f} ms ({plain:.1f}/s, rounds "
          f"{' '.join(f'{r[0]:.1f}' for r in neutral)}), build_avatar {_med([r[1] for r in neutral]) * 1e3:.2f} ms, "
          f"{statistics.mean(x for r in neutral for x in r[2]) / 1024:.1f} KB mean")  # fmt: skip
    print(f"  RATIO with face sheet / neutral = {ratio9:.2f}; issue 9 target <= 2.5: "
          f"{'met' if ratio9 <= 2.5 else 'MISSED'}")  # fmt: skip
    print(f"\nconditions: load average at end {_load()} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
