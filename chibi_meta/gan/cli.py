"""`chibi-meta train | tune | redraw | eval | generate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from chibi_meta.limits import MAX_SEED, MAX_TRUNCATION


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train the texture GAN")
    t.add_argument("--data", required=True, metavar="DIR", help="dataset folder (chibi-meta dataset build)")
    t.add_argument("--out", required=True, metavar="RUN", help="run folder (checkpoints, samples, tb/)")
    t.add_argument("--minutes", type=float, help="training time budget, over all resumes")
    t.add_argument("--kimg", type=float, help="training length in thousands of real images shown")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--batch", type=int, default=32, help="total batch size (default 32)")
    t.add_argument("--lr", type=float, default=0.0002, help="Adam learning rate of G and D (default 0.0002)")
    t.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")
    t.add_argument("--r1-gamma", type=float, default=1.0, help="R1 weight (default 1.0; 0 disables)")
    t.add_argument("--aux-weight", type=float, default=1.0, help="weight of the auxiliary classifier loss (default 1)")
    t.add_argument("--balanced-g-labels", action="store_true",
                   help="G steps ask for every attribute value equally often (helps rare values)")
    t.add_argument("--balanced-aux", action="store_true",
                   help="D's classifier heads weight each value by 1/frequency (so D learns rare values)")
    t.add_argument("--aug", default="translation,cutout", help="DiffAugment policy (translation,cutout,color)")
    t.add_argument("--ema-kimg", type=float, default=10.0, help="EMA half-life in kimg (default 10)")
    t.add_argument("--snapshot-minutes", type=float, default=5.0, help="checkpoint interval (default 5)")
    t.add_argument("--metrics-minutes", type=float, default=15.0, help="metrics interval (default 15)")
    t.add_argument("--seed", type=int, default=0, help="random seed of the run (default 0)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    t.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    t.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--init-generator", metavar="FILE",
                   help="fine-tune: start G from this generator file (same network and attributes; D starts fresh)")
    t.add_argument("--freeze-g-kimg", type=float, default=0.0,
                   help="keep G fixed for the first K kimg while D warms up (default 0)")
    t.add_argument("--d-classify-kimg", type=float, default=0.0,
                   help="of those, the first K kimg D trains only its attribute heads on real images (default 0)")
    t.set_defaults(func=_train)

    u = sub.add_parser("tune", help="fine-tune how chosen attribute values are drawn (their embeddings only)")
    u.add_argument("--model", metavar="FILE", help="generator to start from (default: the shipped model)")
    u.add_argument("--data", required=True, metavar="DIR", help="the dataset it was trained on")
    u.add_argument("--values", required=True, metavar="A=V,...", help="values to tune: eyes=eyes11,mouth=mouth03")
    u.add_argument("--out", required=True, metavar="RUN", help="run folder (generator.safetensors, report.json)")
    u.add_argument("--steps", type=int, default=150, help="optimisation steps per value (default 150)")
    u.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    u.add_argument("--lr", type=float, default=0.02, help="Adam learning rate of the embedding (default 0.02)")
    u.add_argument("--anchor", type=float, default=0.02, help="weight keeping it near the trained one (default 0.02)")
    u.add_argument("--classifier-epochs", type=float, default=2.0, help="tuning classifier epochs (default 2)")
    u.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    u.add_argument("--keep-gain", type=float, default=0.02,
                   help="keep a tuned value only if the check classifier reads it this much more often (default 0.02)")
    u.add_argument("--keep-others", type=float, default=0.01,
                   help="... and no other attribute of its images more than this much less often (default 0.01)")
    u.add_argument("--hold", type=float, default=1.0,
                   help="loss weight of each other attribute's cross-entropy (default 1)")
    u.add_argument("--check-images", type=int, default=200,
                   help="held-out label sets both classifiers read before and after (default 200)")
    u.set_defaults(func=_tune)
    _register_redraw(sub)
    register_use(sub)


def _register_redraw(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("redraw", help="fine-tune the whole generator on DiceBear's drawings of eyes, mouths, glasses")
    r.add_argument("--model", metavar="FILE", help="generator to start from (default: the shipped model)")
    r.add_argument("--data", required=True, metavar="DIR", help="the DiceBear adventurer dataset it was trained on")
    r.add_argument("--out", required=True, metavar="RUN", help="run folder (generator.safetensors, report.json)")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    r.add_argument("--attrs", default="eyes,mouth",
                   help="attributes to redraw: eyes, mouth, glasses (default eyes,mouth)")
    r.add_argument("--pairs", type=int, default=8000, help="DiceBear pairs rendered (default 8000)")
    r.add_argument("--steps", type=int, default=600, help="optimisation steps (default 600)")
    r.add_argument("--batch", type=int, default=16, help="pairs and other label sets per step (default 16 each)")
    r.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    r.add_argument("--inside", type=float, default=1.0,
                   help="weight of L1 to DiceBear's drawing inside the part's footprint (default 1)")
    r.add_argument("--outside", type=float, default=1.0, help="weight of L1 to the source outside the part (default 1)")
    r.add_argument("--anchor", type=float, default=2.0, help="weight of L1 to the source on other faces (default 2)")
    r.add_argument("--classify", type=float, default=0.05, help="weight of the classifier loss (default 0.05)")
    r.add_argument("--classifier-epochs", type=float, default=2.0, help="classifier epochs (default 2)")
    r.add_argument("--check-images", type=int, default=400, help="held-out label sets read before/after (default 400)")
    r.add_argument("--keep-others", type=float, default=0.01,
                   help="accepted only if no attribute is read more than this much less often (default 0.01)")
    r.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    r.add_argument("--workers", type=int, default=0, help="processes rendering the pairs (default: one per core)")
    r.add_argument("--weights", default="", metavar="A=V:W,...",
                   help="draw these values W times as often in the pairs, e.g. eyes=eyes11:4 (default: all 1)")
    r.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    r.set_defaults(func=_redraw)


def _redraw(args: argparse.Namespace) -> int:
    import json

    from chibi_meta.gan.api import default_model_path
    from chibi_meta.gan.redraw import RedrawOptions, check_options, run

    opt = RedrawOptions(model=str(args.model or default_model_path()), data=args.data, out=args.out,
                        attrs=tuple(a.strip() for a in args.attrs.split(",") if a.strip()), pairs=args.pairs,
                        steps=args.steps, batch=args.batch, lr=args.lr, inside=args.inside, outside=args.outside,
                        anchor=args.anchor, classify=args.classify, classifier_epochs=args.classifier_epochs,
                        check_images=args.check_images, keep_others=args.keep_others,
                        checkpoint_every=args.checkpoint_every, workers=args.workers, seed=args.seed,
                        weights=args.weights)  # fmt: skip
    print(json.dumps(run(check_options(opt), resume=args.resume), indent=1, sort_keys=True))
    return 0


def _tune(args: argparse.Namespace) -> int:
    import json

    from chibi_meta.gan.api import default_model_path
    from chibi_meta.gan.tune import TuneOptions, check_options, run

    opt = TuneOptions(model=str(args.model or default_model_path()), data=args.data, out=args.out, steps=args.steps,
                      batch=args.batch, lr=args.lr, anchor=args.anchor, classifier_epochs=args.classifier_epochs,
                      seed=args.seed, keep_gain=args.keep_gain, keep_others=args.keep_others, hold=args.hold,
                      check_images=args.check_images)  # fmt: skip
    print(json.dumps(run(check_options(opt, args.values)), indent=1, sort_keys=True))
    return 0


def _train(args: argparse.Namespace) -> int:
    from chibi_meta.gan.training import TrainOptions, train

    opt = TrainOptions(
        data=args.data, out=args.out, minutes=args.minutes, kimg=args.kimg, batch=args.batch, lr_g=args.lr,
        lr_d=args.lr, betas=(args.beta1, 0.99), r1_gamma=args.r1_gamma, aux_weight=args.aux_weight,
        balanced_g_labels=args.balanced_g_labels, balanced_aux=args.balanced_aux, aug=args.aug,
        ema_kimg=args.ema_kimg,
        snapshot_minutes=args.snapshot_minutes, metrics_minutes=args.metrics_minutes, seed=args.seed,
        device=args.device, threads=args.threads, tensorboard=not args.no_tensorboard,
        progress=not args.no_progress, init_generator=args.init_generator, freeze_g_kimg=args.freeze_g_kimg,
        d_classify_kimg=args.d_classify_kimg,
    )
    train(opt, resume=args.resume)
    return 0


def register_use(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="metrics of a generator against its dataset")
    e.add_argument("--model", metavar="PATH", help="generator .safetensors (default: the shipped model)")
    e.add_argument("--data", required=True, metavar="DIR", help="the dataset the model was trained on")
    e.add_argument("-n", type=int, default=2000, help="images per side (default 2000)")
    e.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    e.add_argument("--card", metavar="FILE", help="also write a model card (Markdown) with the figures")
    e.add_argument("--avatars", type=_int, metavar="N",
                   help="instead: the 3D fidelity of N avatars (seeds 0..N-1; docs/gan.md, 3D fidelity)")
    e.add_argument("--renders", metavar="DIR", help="with --avatars: write side-by-side PNGs of some avatars here")
    e.set_defaults(func=_eval)

    g = sub.add_parser("generate", help="generate avatar textures (RGBA PNG)")
    g.add_argument("--model", metavar="PATH", help="generator .safetensors (default: the shipped model)")
    g.add_argument("--seed", type=_int, required=True, help=f"seed, an integer in [0, {MAX_SEED}]")
    g.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE", help="pin an attribute (repeatable)")
    g.add_argument("--count", type=_int, default=1, help="textures with seeds S, S+1, ... (default 1)")
    g.add_argument("--truncation", type=float, default=1.0, help=f"latent scale in [0, {MAX_TRUNCATION}] (default 1)")
    g.add_argument("--interpolate-to", type=_int, metavar="SEED", help="interpolate from --seed to this seed")
    g.add_argument("--out", required=True, metavar="PATH", help="a .png file (count 1) or a folder")
    g.set_defaults(func=_generate)



def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None


def parse_attrs(pairs: list[str]) -> dict[str, str]:
    from chibi_meta.errors import UsageError

    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k or not v:
            raise UsageError(f"--attr takes KEY=VALUE, got {p!r}")
        out[k.strip()] = v.strip()
    return out


def _eval(args: argparse.Namespace) -> int:
    import json
    import sys

    from chibi_meta.atomic import atomic_write_text
    from chibi_meta.data.store import load_dataset
    from chibi_meta.gan.api import TextureGenerator
    from chibi_meta.gan.metrics import evaluate

    if args.avatars is None and args.renders:
        from chibi_meta.errors import UsageError

        raise UsageError("--renders needs --avatars N")
    if args.avatars is not None:
        from chibi_meta.avatar.fidelity import check_count, evaluate_avatars

        check_count(args.avatars)
        if args.card:
            from chibi_meta.errors import UsageError

            raise UsageError("--card takes the texture metrics; run eval without --avatars for it")
    gen = TextureGenerator.load(args.model)
    ds = load_dataset(args.data)
    if args.avatars is not None:
        res = {"model_id": gen.model_id, **evaluate_avatars(gen, ds, args.avatars, save_dir=args.renders)}
    else:
        res = {"model_id": gen.model_id, **(evaluate(gen.G, ds, n=args.n) or {})}
    text = json.dumps(res, indent=1, sort_keys=True)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    if args.card:
        from chibi_meta.gan.modelcard import keep_history, model_card

        card = Path(args.card)
        old = card.read_text(encoding="utf-8") if card.is_file() else None
        atomic_write_text(card, keep_history(model_card(gen, res), old))
    sys.stdout.write(text + "\n")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chibi_meta.errors import UsageError
    from chibi_meta.gan.api import TextureGenerator, check_truncation
    from chibi_meta.gan.images import save_png
    from chibi_meta.limits import MAX_COUNT

    if not 1 <= args.count <= MAX_COUNT:
        raise UsageError(f"--count must be in [1, {MAX_COUNT}], got {args.count}")
    check_truncation(args.truncation)
    gen = TextureGenerator.load(args.model)
    attrs = gen.schema.validate(parse_attrs(args.attr))
    out = Path(args.out)
    if args.interpolate_to is not None:
        imgs = gen.interpolate(args.seed, args.interpolate_to, max(args.count, 2), attrs, args.truncation)
        names = [f"interp-{args.seed}-{args.interpolate_to}-{i:03d}.png" for i in range(len(imgs))]
    else:
        seeds = [args.seed + i for i in range(args.count)]
        imgs = gen.generate(seeds, [attrs] * len(seeds), args.truncation)
        names = [f"seed-{s}.png" for s in seeds]
    if len(imgs) == 1 and out.suffix.lower() == ".png":
        save_png(out, imgs[0])
        return 0
    if out.suffix.lower() == ".png":
        raise UsageError(f"--out {out} is a .png file but {len(imgs)} images were asked for; give a folder")
    for name, img in zip(names, imgs, strict=True):
        save_png(out / name, img)
    return 0


