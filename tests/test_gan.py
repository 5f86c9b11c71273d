"""The GAN stage: training steps, kill and resume, checkpoints, DDP, determinism, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chibi_meta.errors import ModelError, UsageError
from chibi_meta.gan import checkpoint, loss
from chibi_meta.gan.api import TextureGenerator, export_generator
from chibi_meta.gan.training import Trainer, TrainOptions
from tests.conftest import ROOT, run_cli

TINY = {"z_dim": 16, "emb_dim": 4, "w_dim": 32, "g_channels": [32, 32, 16, 8], "d_channels": [8, 16, 32, 32]}


def _opts(data: Path, out: Path, **kw: object) -> TrainOptions:
    base = dict(data=str(data), out=str(out), kimg=0.064, batch=8, tensorboard=False, progress=False, net=TINY,
                r1_every=2)
    base.update(kw)
    return TrainOptions(**base)  # type: ignore[arg-type]


def test_two_training_steps_on_cpu_change_weights(small_dataset: Path, tmp_path: Path) -> None:
    tr = Trainer(_opts(small_dataset, tmp_path / "run"))
    before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    d_before = {k: v.clone() for k, v in tr.D.state_dict().items()}
    s1 = tr.train_step()  # step 0 includes R1
    s2 = tr.train_step()
    assert "loss/r1" in s1 and all(np.isfinite(v) for v in {**s1, **s2}.values())
    assert any(not torch.equal(before[k], v) for k, v in tr.G.state_dict().items())
    assert any(not torch.equal(d_before[k], v) for k, v in tr.D.state_dict().items())
    assert tr.step == 2 and tr.nimg == 16
    assert json.loads((tmp_path / "run" / "options.json").read_text())["batch"] == 8


def test_fine_tune_starts_from_a_generator_and_can_hold_it(small_dataset: Path, tmp_path: Path) -> None:
    """--init-generator: G and G_ema start from a generator file, D fresh; --freeze-g-kimg keeps G
    fixed while D learns; a generator of another network or attribute set is refused by name."""
    first = Trainer(_opts(small_dataset, tmp_path / "a"))
    first.train_step()
    src = tmp_path / "g.safetensors"
    export_generator(src, first.G_ema, first.ds.schema, first.model_info())
    want = TextureGenerator.load(src).G.state_dict()
    tr = Trainer(_opts(small_dataset, tmp_path / "b", init_generator=str(src), freeze_g_kimg=0.016))
    for net in (tr.G, tr.G_ema):
        assert all(torch.equal(v, want[k]) for k, v in net.state_dict().items())
    d0 = {k: v.clone() for k, v in tr.D.state_dict().items()}
    tr.train_step()
    tr.train_step()  # 16 images: still frozen
    assert all(torch.equal(v, want[k]) for k, v in tr.G.state_dict().items())
    assert any(not torch.equal(d0[k], v) for k, v in tr.D.state_dict().items())
    tr.train_step()  # past the freeze: G moves
    assert any(not torch.equal(v, want[k]) for k, v in tr.G.state_dict().items())
    held = Trainer(_opts(small_dataset, tmp_path / "f", init_generator=str(src), freeze_g_kimg=1.0, kimg=0.2))
    held.run()  # the loop (progress, snapshot) runs through a frozen G: 25 steps, none updates it
    assert held.step == 25 and all(torch.equal(v, want[k]) for k, v in held.G.state_dict().items())
    other = {**TINY, "w_dim": 16}
    with pytest.raises(UsageError, match="network"):
        Trainer(_opts(small_dataset, tmp_path / "c", init_generator=str(src), net=other))
    with pytest.raises(UsageError, match="no such file"):
        _opts(small_dataset, tmp_path / "d", init_generator=str(tmp_path / "nope.safetensors")).validate()
    r = run_cli("train", "--data", str(small_dataset), "--out", str(tmp_path / "e"), "--kimg", "1",
                "--freeze-g-kimg", "-1")  # fmt: skip
    assert r.returncode == 2 and "--freeze-g-kimg" in r.stderr and "Traceback" not in r.stderr


def test_d_classify_warm_up_trains_only_the_attribute_heads_first(small_dataset: Path, tmp_path: Path) -> None:
    """--d-classify-kimg: the first steps train D's features and attribute heads on real images only
    (G, the real/fake heads and their zero init untouched), then the full game starts."""
    tr = Trainer(_opts(small_dataset, tmp_path / "a", freeze_g_kimg=0.032, d_classify_kimg=0.016))
    adv = ("out.weight", "out.bias", *(f"proj.tables.{i}.weight" for i in range(len(tr.D.proj.tables))))
    d = tr.D.state_dict()
    assert all(float(d[k].abs().max()) == 0 for k in adv)
    g0 = {k: v.clone() for k, v in tr.G.state_dict().items()}
    d0 = {k: v.clone() for k, v in d.items()}
    s = tr.train_step()
    assert set(s) == {"loss/D_aux"} and tr.nimg == 8
    d1 = tr.D.state_dict()
    assert all(torch.equal(d1[k], d0[k]) for k in adv)  # the real/fake heads wait
    assert not torch.equal(d1["aux.0.weight"], d0["aux.0.weight"])
    assert not torch.equal(d1["from_rgba.weight"], d0["from_rgba.weight"])
    tr.train_step()
    s = tr.train_step()  # 16 images in: the game, G still frozen
    assert "loss/D" in s and "loss/G" not in s
    assert any(not torch.equal(tr.D.state_dict()[k], d0[k]) for k in adv)
    assert all(torch.equal(v, g0[k]) for k, v in tr.G.state_dict().items())
    tr.train_step()
    assert "loss/G" in tr.train_step()
    with pytest.raises(UsageError, match="--d-classify-kimg"):
        _opts(small_dataset, tmp_path / "b", freeze_g_kimg=1.0, d_classify_kimg=2.0).validate()


def test_class_balanced_aux_loss() -> None:
    labels = torch.tensor([[0, 1], [0, 0], [0, 1], [1, 1]])  # attribute 0: 3 x value 0, 1 x value 1
    w = loss.inverse_frequency_weights(labels, (3, 2))
    # Value 2 of attribute 0 never occurs: weight 0; the rest: 1 / (K p).
    assert torch.allclose(w[0], torch.tensor([1 / (3 * 0.75), 1 / (3 * 0.25), 0.0]))
    assert torch.allclose(w[1][labels[:, 1]].mean(), torch.tensor(1.0))  # mean 1 under the data
    logits = [torch.randn(4, 3), torch.randn(4, 2)]
    plain = loss.aux_loss(logits, labels)
    expect = sum(F.cross_entropy(lg, labels[:, i]) for i, lg in enumerate(logits)) / 2
    assert torch.allclose(plain, expect)
    weighted = loss.aux_loss(logits, labels, w)
    ce0 = F.cross_entropy(logits[0], labels[:, 0], reduction="none")
    ce1 = F.cross_entropy(logits[1], labels[:, 1], reduction="none")
    manual = ((ce0 * w[0][labels[:, 0]]).mean() + (ce1 * w[1][labels[:, 1]]).mean()) / 2
    assert torch.allclose(weighted, manual)
    # The rare value (attribute 0, value 1) now costs 1/(3*0.25) / (1/(3*0.75)) = 3x the common one.
    assert float(w[0][1] / w[0][0]) == pytest.approx(3.0)


def test_balanced_options_train(small_dataset: Path, tmp_path: Path) -> None:
    tr = Trainer(_opts(small_dataset, tmp_path / "run", balanced_aux=True, balanced_g_labels=True))
    assert tr.aux_class_weights is not None and len(tr.aux_class_weights) == len(tr.ds.schema.sizes)
    stats = tr.train_step()
    assert np.isfinite(stats["loss/D_aux"]) and np.isfinite(stats["loss/G_aux"])


def test_checkpoint_round_trip(small_dataset: Path, tmp_path: Path) -> None:
    tr = Trainer(_opts(small_dataset, tmp_path / "run"))
    tr.train_step()
    tr.save()
    meta = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert meta["step"] == 1 and meta["dataset_fingerprint"] == tr.ds.fingerprint
    tr2 = Trainer(_opts(small_dataset, tmp_path / "run"), resume=True)
    for a, b in [(tr.G, tr2.G), (tr.D, tr2.D), (tr.G_ema, tr2.G_ema)]:
        for (k, v), v2 in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(v, v2), k
    assert tr2.opt_g.state_dict()["state"][0]["exp_avg"].equal(tr.opt_g.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(tr2.rng.get_state(), tr.rng.get_state())
    # the same next step from the original and the resumed trainer
    s_a, s_b = tr.train_step(), tr2.train_step()
    assert s_a == pytest.approx(s_b, rel=1e-5)
    # the exported generator loads through the public API
    gen = TextureGenerator.load(tmp_path / "run" / "generator.safetensors")
    assert gen.generate([1]).shape == (1, 32, 32, 4)


def test_kill_and_resume(small_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [sys.executable, "-m", "chibi_meta", "train", "--data", str(small_dataset), "--out", str(run),
            "--kimg", "1000", "--batch", "8", "--snapshot-minutes", "0.01", "--no-tensorboard", "--no-progress",
            "--threads", "1"]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    ckpt = run / "checkpoint.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and json.loads(ckpt.read_text())["step"] >= 3):
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    killed_at = json.loads(ckpt.read_text())["step"]
    assert killed_at >= 3
    assert not list(run.glob(".*.tmp")) or True  # a temp file may remain from the kill; never a torn final file
    checkpoint.load(run / "checkpoint.safetensors")  # the file under the final name is whole
    target_kimg = (killed_at + 2) * 8 / 1000
    r = run_cli("train", "--data", str(small_dataset), "--out", str(run), "--kimg", str(target_kimg), "--batch", "8",
                "--resume", "--no-tensorboard", "--no-progress", "--threads", "1", timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"resumed {run / 'checkpoint.safetensors'} at step {killed_at}" in r.stderr
    assert json.loads(ckpt.read_text())["step"] == killed_at + 2
    # starting again without --resume refuses to overwrite the run
    r = run_cli("train", "--data", str(small_dataset), "--out", str(run), "--kimg", "1", "--no-tensorboard")
    assert r.returncode == 2 and "--resume" in r.stderr


def _ddp_worker(rank: int, world: int, data: str, out: str, port: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    tr = Trainer(_opts(Path(data), Path(out), batch=8, device="cpu"))
    tr.train_step()  # with R1
    tr.train_step()
    tr.save()
    state = {**checkpoint.prefixed("G", tr.G.state_dict()), **checkpoint.prefixed("D", tr.D.state_dict())}
    checkpoint.save(Path(out).parent / f"rank{rank}.safetensors", state, {})
    import torch.distributed as dist

    dist.destroy_process_group()


def test_two_process_gloo_ddp_step(small_dataset: Path, tmp_path: Path) -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, str(small_dataset), str(tmp_path / "run"), port))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
        assert p.exitcode == 0
    w0, _ = checkpoint.load(tmp_path / "rank0.safetensors")
    w1, _ = checkpoint.load(tmp_path / "rank1.safetensors")
    fresh = Trainer(_opts(small_dataset, tmp_path / "fresh"))
    assert any(not torch.equal(w0["G." + k], v) for k, v in fresh.G.state_dict().items())  # it trained
    for k in w0:  # gradients were averaged: both ranks hold identical weights after the steps
        assert torch.equal(w0[k], w1[k]), k
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()  # rank 0 wrote it


@pytest.fixture(scope="module")
def tiny_model(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chibi_meta.data.store import load_dataset
    from chibi_meta.gan.networks import Generator, NetConfig

    ds = load_dataset(small_dataset)
    torch.manual_seed(0)
    G = Generator(NetConfig.for_resolution(32, ds.schema.sizes, **{k: tuple(v) if isinstance(v, list) else v
                                                                   for k, v in TINY.items()}))
    path = tmp_path_factory.mktemp("m") / "g.safetensors"
    export_generator(path, G, ds.schema, {"attribution": "test"}, half=False)
    return path


def test_generation_is_deterministic_and_batch_independent(tiny_model: Path) -> None:
    gen = TextureGenerator.load(tiny_model)
    a = gen.generate([5, 6, 7], [{"hair_color": "pink"}, None, {}])
    b = TextureGenerator.load(tiny_model).generate([5], [{"hair_color": "pink"}])
    c = gen.generate(list(range(20)) + [5], [None] * 20 + [{"hair_color": "pink"}])
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[0], c[-1])
    assert not np.array_equal(a[0], a[1])
    assert gen.resolve(5, {"hair_color": "pink"})["skin"] == gen.resolve(5)["skin"]
    path = gen.interpolate(1, 2, 5)
    assert path.shape == (5, 32, 32, 4) and np.array_equal(path[0], gen.generate([1])[0])


def test_truncation_pulls_toward_the_attributes_mean_face() -> None:
    """psi acts on w (z is normalised inside the generator, so scaling z would do nothing): 1 is the
    latent as drawn, 0 the mean face of the attributes (the same for every seed), and in between
    the faces of different seeds differ less; batch-independent like psi 1."""
    gen = TextureGenerator.load(None)
    seeds = list(range(40, 52))
    attrs = [gen.resolve(0, {"hair_color": "pink"})] * len(seeds)  # every attribute fixed
    spread = {}
    for psi in (1.0, 0.5, 0.0):
        imgs = gen.generate(seeds, attrs, truncation=psi).astype(np.float64)
        spread[psi] = float(imgs.std(0).mean())
    assert spread[0.0] == 0.0 and 0.0 < spread[0.5] < 0.8 * spread[1.0], spread
    a = gen.generate(seeds[:1], attrs[:1], truncation=0.5)
    assert np.array_equal(a[0], gen.generate(seeds, attrs, truncation=0.5)[0])
    assert not np.array_equal(a[0], gen.generate(seeds[:1], attrs[:1])[0])
    assert gen.generate(seeds[:1], attrs[:1], truncation=0.5)[0][..., 3].max() == 255


def test_regions_equal_the_same_pixels_of_a_full_pass() -> None:
    """generate_regions runs the finer blocks on a crop: the same pixels as generate, at any psi."""
    from chibi_meta.avatar import faces

    gen = TextureGenerator.load(None)
    seeds, box = [3, 4, 5], faces.SHEET_BOX
    attrs = [gen.resolve(s) for s in seeds]
    overrides = [{"eyes": "eyes21"}, {"mouth": "mouth30"}]
    for psi in (1.0, 0.7):
        regions = gen.generate_regions(seeds, attrs, overrides, box, truncation=psi)
        for j, o in enumerate(overrides):
            full = gen.generate(seeds, [{**a, **o} for a in attrs], truncation=psi)
            crop = full[:, box[0] : box[1], box[2] : box[3]].astype(np.int16)
            assert np.abs(regions[:, j].astype(np.int16) - crop).max() <= 1, (psi, o)


def test_face_sheets_are_batch_independent() -> None:
    """A seed's face sheet is the same bytes alone and inside a batch of sheets (which spans several
    of generate_regions' fixed-size passes, with the seed's rows at another offset in them)."""
    from chibi_meta.avatar import faces

    gen = TextureGenerator.load(None)
    variants = faces.variants_for(gen.schema.names)
    seeds = [7, 8, 9, 10]
    attrs = [gen.resolve(s) for s in seeds]
    batch = gen.generate_regions(seeds, attrs, variants, faces.SHEET_BOX)
    for i in (0, 2):
        alone = gen.generate_regions(seeds[i : i + 1], attrs[i : i + 1], variants, faces.SHEET_BOX)
        assert np.array_equal(alone[0], batch[i]), i


def test_pickled_and_corrupt_checkpoints_are_refused(tmp_path: Path, tiny_model: Path) -> None:
    pkl = tmp_path / "evil.safetensors"
    torch.save({"w": torch.zeros(2)}, pkl)
    with pytest.raises(ModelError, match="pickled"):
        TextureGenerator.load(pkl)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(tiny_model.read_bytes()[:1000])
    with pytest.raises(ModelError, match="not a valid safetensors|corrupt"):
        TextureGenerator.load(bad)
    with pytest.raises(ModelError, match="not found"):
        TextureGenerator.load(tmp_path / "nope.safetensors")
    for path, needle in [(pkl, "pickled"), (bad, "safetensors"), (tmp_path / "nope.safetensors", "not found")]:
        r = run_cli("generate", "--model", str(path), "--seed", "1", "--out", str(tmp_path / "x.png"))
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_generate_cli_and_errors(tiny_model: Path, tmp_path: Path) -> None:
    m = str(tiny_model)
    r = run_cli("generate", "--model", m, "--seed", "3", "--attr", "hair_color=pink", "--out", str(tmp_path / "a.png"))
    assert r.returncode == 0, r.stderr
    r = run_cli("generate", "--model", m, "--seed", "3", "--count", "3", "--out", str(tmp_path / "many"))
    assert r.returncode == 0 and len(list((tmp_path / "many").glob("seed-*.png"))) == 3
    r = run_cli("generate", "--model", m, "--seed", "3", "--interpolate-to", "9", "--count", "4",
                "--out", str(tmp_path / "interp"))
    assert r.returncode == 0 and len(list((tmp_path / "interp").glob("*.png"))) == 4
    from PIL import Image

    assert Image.open(tmp_path / "a.png").mode == "RGBA"
    bad = [
        (["--attr", "hat=red"], "unknown attribute 'hat'; allowed: hair_color"),
        (["--attr", "hair_color=chartreuse"], "allowed: black, blonde"),
        (["--attr", "hair_color"], "KEY=VALUE"),
        (["--seed", "-4"], "out of range"),
        (["--seed", "99999999999"], "out of range"),
        (["--seed", "abc"], "expected an integer"),
        (["--truncation", "5"], "truncation must be a number in [0, 2.0]"),
        (["--count", "0"], "--count must be in"),
    ]
    for extra, needle in bad:
        args = ["generate", "--model", m, "--seed", "1", "--out", str(tmp_path / "bad.png"), *extra]
        r = run_cli(*args)
        assert r.returncode == 2, (extra, r.stderr)
        assert needle in r.stderr, (extra, r.stderr)
    assert not (tmp_path / "bad.png").exists()


def test_attributes_json(tiny_model: Path) -> None:
    r = run_cli("attributes", "--json", "--model", str(tiny_model))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    hc = next(a for a in doc["attributes"] if a["name"] == "hair_color")
    assert len(hc["values"]) == 14 and hc["dicebear"][hc["values"].index("pink")] == "#dba3be"
    names = [a["name"] for a in doc["attributes"]]
    # the generator's attributes, then the packaging one (outfit, drawn by the avatar stage)
    assert names == ["hair_color", "hair_style", "skin", "eyes", "mouth", "glasses", "outfit"]
    assert doc["attributes"][-1] == {"name": "outfit", "values": ["tshirt_shorts", "hoodie_trousers", "dress"],
                                     "stage": "avatar"}
    assert [len(a["values"]) for a in doc["attributes"]] == [14, 45, 4, 26, 30, 6, 3]


def test_train_option_errors(small_dataset: Path, tmp_path: Path) -> None:
    for extra, needle in [([], "--minutes M or --kimg K"), (["--kimg", "-1"], "--kimg must be > 0"),
                          (["--kimg", "1", "--aug", "blur"], "unknown augmentation 'blur'"),
                          (["--kimg", "1", "--device", "tpu"], "auto, cpu or cuda")]:
        r = run_cli("train", "--data", str(small_dataset), "--out", str(tmp_path / "r"), *extra)
        assert r.returncode == 2 and needle in r.stderr, (extra, r.stderr)
    r = run_cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--kimg", "1")
    assert r.returncode == 2 and "dataset.json is missing" in r.stderr


def test_eval_reports_every_metric_and_writes_a_card(tiny_model: Path, small_dataset: Path, tmp_path: Path) -> None:
    r = run_cli("eval", "--model", str(tiny_model), "--data", str(small_dataset), "-n", "12",
                "--out", str(tmp_path / "m.json"), "--card", str(tmp_path / "card.md"))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "m.json").read_text())
    for attr in ("hair_color", "hair_style", "skin", "eyes", "mouth", "glasses"):
        assert 0 <= res[f"acc_gen/{attr}"] <= 1 and 0 <= res[f"acc_real/{attr}"] <= 1
    assert res["fd_gen_real"] >= 0 and res["fd_real_real"] >= 0
    assert res["diversity_ratio"] > 0 and res["intra_attr_pixel_l1"] >= 0
    # Per-value accuracies for the attributes with few values (skin 4, glasses 6), none for hair style (45).
    per_value = {k for k in res if k.startswith("acc_gen/") and "=" in k}
    from chibi_meta.data.attributes import ADVENTURER
    from chibi_meta.gan.metrics import PER_VALUE_MAX

    small = {a.name for a in ADVENTURER.attributes if len(a.values) <= PER_VALUE_MAX}
    assert per_value and {k.split("/")[1].split("=")[0] for k in per_value} <= small
    for k in per_value:
        key = k.split("/", 1)[1]
        assert 0 <= res[k] <= 1 and res[f"count/{key}"] >= 1
    assert sum(res[f"count/{k.split('/', 1)[1]}"] for k in per_value if k.startswith("acc_gen/skin=")) == res["n"]
    card = (tmp_path / "card.md").read_text()
    assert "| attribute = value |" in card
    # Rewriting the card keeps its hand-written training history.
    (tmp_path / "card.md").write_text(card + "\n## Training history\n\n- 0 to 1 kimg: defaults.\n")
    r = run_cli("eval", "--model", str(tiny_model), "--data", str(small_dataset), "-n", "12",
                "--card", str(tmp_path / "card.md"))
    assert r.returncode == 0, r.stderr
    again = (tmp_path / "card.md").read_text()
    assert again.count("## Training history") == 1 and again.endswith("- 0 to 1 kimg: defaults.\n")
    assert "| attribute = value |" in again
    assert "Lisa" not in card or "CC BY" in card
    assert "| hair_color |" in card and res["model_id"] in card
