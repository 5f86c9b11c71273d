"""The bridge over real loopback sockets: formats, concurrency, ordering, cancel, auth, origins, limits,
disconnects, disk cache, graceful shutdown, and the `serve` / `request` commands."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from bridge_support import (
    JS_DIR,
    SHIPPED_MODEL,
    ServerThread,
    have_packager,
    raw_connect,
    recv_json,
    recv_until,
    run,
    small_model_path,
    validate,
    validate_glb,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chibi_meta.avatar import names
from chibi_meta.bridge import protocol as P
from chibi_meta.client import BridgeClient, RequestCancelled, RequestError, request

TOKEN = "test-token-123"
needs_packager = pytest.mark.skipif(not have_packager(), reason="chibi_meta.avatar.build_avatar not available yet")


@pytest.fixture(scope="module")
def srv():
    s = ServerThread(tokens=[TOKEN], origins=["https://game.example"], max_in_flight=32, max_wait_ms=5)
    yield s
    s.stop()


def _hdr() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


# -- formats -----------------------------------------------------------------------------------


def test_hello_lists_capabilities(srv) -> None:
    async def main() -> dict:
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            return c.hello

    hello = run(main())
    validate(hello)
    assert hello["protocol"] == 1 and hello["auth"] == "token"
    assert "hair_color" in hello["attributes"] and "pink" in hello["attributes"]["hair_color"]
    assert hello["formats"] == ["glb", "vrm", "png"] and hello["limits"]["max_in_flight"] == 32
    assert hello["morph_target_sets"] == [*names.MORPH_SETS, "none"] == ["vrm", "oculus", "arkit", "none"]
    assert hello["default_morph_targets"] == list(names.DEFAULT_MORPH_SETS)


def test_png_round_trip_and_determinism(srv) -> None:
    from PIL import Image

    async def main() -> tuple:
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            a = await c.generate(seed=1234, attributes={"hair_color": "pink"}, format="png")
            b = await c.generate(seed=None, format="png")
            b2 = await c.generate(seed=b.seed, attributes=b.attributes, format="png", id="again")
            return a, b, b2

    a, b, b2 = run(main())
    for r in (a, b, b2):
        validate(r.header)
        assert r.media_type == "image/png" and hashlib.sha256(r.data).hexdigest() == r.sha256
    img = Image.open(io.BytesIO(a.data))
    assert img.size == (128, 128) and img.mode == "RGBA"
    assert a.attributes["hair_color"] == "pink" and set(a.attributes) == set(srv.engine.gen.schema.names)
    assert 0 <= b.seed <= 2**32 - 1  # the server picked one and said which
    assert b2.sha256 == b.sha256 and b2.cached  # same resolved request -> same bytes, from the cache


@needs_packager
@pytest.mark.parametrize(("fmt", "tex"), [("glb", "png"), ("vrm", "png"), ("glb", "jpeg"), ("vrm", "webp")])
def test_model_formats_round_trip_and_validate(srv, fmt: str, tex: str) -> None:
    async def main():
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            return await c.generate(seed=77, format=fmt, texture_size=256, texture_format=tex)

    r = run(main(), timeout=120)
    validate(r.header)
    assert r.media_type == "model/gltf-binary" and r.data[:4] == b"glTF"
    assert r.header["texture_format"] == tex and r.header["format"] == fmt
    gltf = json.loads(r.data[20:20 + int.from_bytes(r.data[12:16], "little")])
    assert ("VRMC_vrm" in gltf.get("extensionsUsed", [])) == (fmt == "vrm")
    report = validate_glb(r.data)
    assert report["numErrors"] == 0, report["messages"]


# -- morph targets -----------------------------------------------------------------------------


def _gltf(data: bytes) -> dict:
    return json.loads(data[20:20 + int.from_bytes(data[12:16], "little")])


def _target_names(doc: dict) -> list[str]:
    """Every mesh's extras.targetNames, checked against its primitives' morph targets."""
    out: list[str] = []
    for mesh in doc["meshes"]:
        tn = (mesh.get("extras") or {}).get("targetNames") or []
        for prim in mesh["primitives"]:
            assert len(prim.get("targets") or []) == len(tn), (mesh.get("name"), len(tn))
        assert len(set(tn)) == len(tn), mesh.get("name")
        out += tn
    return out


def _check_vrm_binds(doc: dict) -> None:
    """VRM expressions bind only morph targets that the file has."""
    for group in ("preset", "custom"):
        for name, expr in (doc["extensions"]["VRMC_vrm"].get("expressions", {}).get(group) or {}).items():
            for b in expr.get("morphTargetBinds") or []:
                mesh = doc["meshes"][doc["nodes"][b["node"]]["mesh"]]
                assert 0 <= b["index"] < len(mesh["primitives"][0].get("targets") or []), (name, b)


def _validate_many(files: list[bytes]) -> list[dict]:
    """glTF-Validator reports of several GLBs, in one run of tests/js/validate.mjs."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, data in enumerate(files):
            paths.append(os.path.join(d, f"{i}.glb"))
            with open(paths[-1], "wb") as f:
                f.write(data)
        out = subprocess.run(["node", str(JS_DIR / "validate.mjs"), *paths], cwd=JS_DIR, capture_output=True,
                             text=True, timeout=300, check=True)
    return [json.loads(line) for line in out.stdout.strip().splitlines()[-len(files):]]


MORPH_CHOICES = [None, ["vrm"], ["oculus"], ["arkit"], ["vrm", "oculus"], ["arkit", "vrm"], ["none"]]


def _expected_names(choice: list[str] | None) -> set[str]:
    sets = names.check_morph_sets(choice)
    return {n for s in sets for n in names.MORPH_SETS[s]}


@pytest.mark.parametrize("fmt", ["glb", "vrm"])
def test_morph_target_choices_carry_exactly_their_names(srv, fmt: str) -> None:
    """Each choice gives a file whose targetNames are exactly its sets' names (glTF-Validator clean);
    different choices give different bytes and cache keys, equal choices (in any order) the same bytes."""

    async def main() -> list:
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            out = []
            for i, m in enumerate(MORPH_CHOICES):
                out.append(await c.generate(seed=4321, format=fmt, texture_size=256, morph_targets=m, id=f"m{i}"))
            again = await c.generate(seed=4321, format=fmt, texture_size=256, id="again",
                                     morph_targets=["oculus", "arkit", "vrm", "oculus"])  # = the default
            return out, again

    results, again = run(main(), timeout=240)
    by_choice: dict[tuple[str, ...], str] = {}
    for m, r in zip(MORPH_CHOICES, results, strict=True):
        validate(r.header)
        sets = names.check_morph_sets(m)
        assert r.morph_targets == P.morph_targets_json(sets)
        doc = _gltf(r.data)
        got = _target_names(doc)
        assert set(got) == _expected_names(m), (m, sorted(set(got) ^ _expected_names(m))[:10])
        if fmt == "vrm":
            _check_vrm_binds(doc)
        by_choice.setdefault(sets, r.sha256)
        assert by_choice[sets] == r.sha256  # ["arkit", "vrm"] is ["vrm", "arkit"]
    assert len(set(by_choice.values())) == len(by_choice) == 7  # different choices, different bytes
    assert again.sha256 == results[0].sha256 and again.cached  # same choice, same bytes, one cache entry
    keys = {srv.engine.resolve(P.Generate("k", 4321, {}, fmt, 256, morph_targets=s)).key() for s in by_choice}
    assert len(keys) == 7
    files = {names.check_morph_sets(m): r.data for m, r in zip(MORPH_CHOICES, results, strict=True)}
    for sets, report in zip(files, _validate_many(list(files.values())), strict=True):  # every choice:
        assert report["numErrors"] == 0 and report["numWarnings"] == 0, (sets, report["messages"][:5])  # 0 and 0


def test_morph_targets_are_ignored_for_png(srv) -> None:
    async def main() -> list:
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            return [await c.generate(seed=4322, format="png", morph_targets=m, id=f"p{i}")
                    for i, m in enumerate([None, ["oculus"], ["none"]])]

    a, b, c = run(main())
    for r in (a, b, c):
        validate(r.header)
        assert r.morph_targets is None and "morph_targets" not in r.header
    assert a.sha256 == b.sha256 == c.sha256 and b.cached and c.cached


BAD_MORPHS = [["bogus"], "vrm", "vrm,oculus", 3, None, {"vrm": True}, [], ["none", "vrm"], [None], ["Vrm"]]


def test_bad_morph_targets_are_invalid_value_and_the_server_keeps_serving(srv) -> None:
    async def main() -> None:
        ws = await raw_connect(srv.url, additional_headers=_hdr())
        try:
            for i, bad in enumerate(BAD_MORPHS):
                if bad is None:
                    continue  # null is the default: valid
                for fmt in ("glb", "png"):
                    rid = f"bad{i}-{fmt}"
                    await ws.send(json.dumps({"type": "generate", "id": rid, "seed": 5, "format": fmt,
                                              "morph_targets": bad}))
                    err = (await recv_until(ws, lambda m, rid=rid: m.get("id") == rid))[-1]
                    validate(err)
                    assert err["type"] == "error" and err["code"] == "invalid_value", (bad, err)
                    assert "allowed: vrm, oculus, arkit, none" in err["message"], err
            await ws.send(json.dumps({"type": "generate", "id": "ok", "seed": 5, "format": "glb", "texture_size": 256,
                                      "morph_targets": ["none"]}))
            frames = await recv_until(ws, lambda m: m.get("id") == "ok")
            assert frames[-1]["type"] == "result" and frames[-1]["morph_targets"] == ["none"], frames[-1]
            validate(frames[-1])
            data = await asyncio.wait_for(ws.recv(), 60)
            assert isinstance(data, bytes) and _target_names(_gltf(data)) == []
        finally:
            await ws.close()
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:  # the client says the same
            with pytest.raises(RequestError) as e:
                await c.generate(seed=5, format="vrm", morph_targets=["visemes"])
            assert e.value.code == "invalid_value" and "allowed: vrm, oculus, arkit, none" in e.value.message
            assert (await c.generate(seed=5, format="png")).seed == 5

    run(main(), timeout=120)


# -- concurrency -------------------------------------------------------------------------------


def test_many_clients_at_once(srv) -> None:
    async def one(i: int) -> list:
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            return await asyncio.gather(*(c.generate(seed=10_000 + 10 * i + j, format="png") for j in range(6)))

    async def main() -> list:
        return await asyncio.gather(*(one(i) for i in range(24)))

    before = dict(srv.run_sync(lambda: dict(srv.engine.stats.batches)))
    results = [r for rs in run(main(), timeout=120) for r in rs]
    assert len(results) == 144 and len({r.seed for r in results}) == 144
    after = srv.run_sync(lambda: dict(srv.engine.stats.batches))
    new_sizes = [k for k in after if after[k] > before.get(k, 0)]
    assert max(new_sizes) > 1  # requests from different clients shared forward passes


def test_out_of_order_completion(srv) -> None:
    async def main() -> list[str]:
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            await c.generate(seed=5, format="png", id="warm")  # now cached
            ws = c.ws
            order: list[str] = []
            orig = c._on_text

            def spy(frame: str) -> None:
                msg = json.loads(frame)
                if msg.get("type") == "result":
                    order.append(msg["id"])
                orig(frame)

            c._on_text = spy  # type: ignore[method-assign]
            slow = [c.generate(seed=900 + i, format="png", id=f"slow{i}") for i in range(8)]
            t = asyncio.gather(*slow)
            await asyncio.sleep(0)
            fast = await c.generate(seed=5, format="png", id="fast")
            await t
            assert fast.cached and ws is c.ws
            return order

    order = run(main())
    assert order.index("fast") < max(order.index(f"slow{i}") for i in range(8))


def test_cancel() -> None:
    s = ServerThread(max_batch=1, max_wait_ms=0)  # one texture per forward pass: the queue backs up
    try:
        async def main() -> None:
            async with await BridgeClient.connect(s.url) as c:
                tasks = [asyncio.ensure_future(c.generate(seed=5000 + i, format="png", id=f"c{i}")) for i in range(12)]
                await asyncio.sleep(0.05)
                await c.cancel("c11")
                await c.cancel("never-sent")  # unknown ids are ignored
                res = await asyncio.gather(*tasks, return_exceptions=True)
                assert isinstance(res[11], RequestCancelled), res[11]
                assert all(not isinstance(r, BaseException) for r in res[:11])
                # cancelling an awaiting task sends `cancel` too, and the connection keeps working
                t = asyncio.ensure_future(c.generate(seed=6000, format="png"))
                await asyncio.sleep(0.01)
                t.cancel()
                await asyncio.gather(t, return_exceptions=True)
                ok = await c.generate(seed=6001, format="png")
                assert ok.seed == 6001
                st = await c.stats()
                validate(st)
                assert st["cancelled"] >= 1

        run(main())
    finally:
        s.stop()


def test_cancel_right_after_generate_is_answered() -> None:
    """A cancel that arrives before the server started the request still gets `cancelled`, and the
    id is free again (found by the Unity client's tests)."""
    s = ServerThread(max_batch=1, max_wait_ms=0)
    try:
        async def main() -> None:
            ws = await raw_connect(s.url)
            try:
                for i in range(5):
                    await ws.send(json.dumps({"type": "generate", "id": "x", "seed": 7000 + i, "format": "png"}))
                    await ws.send(json.dumps({"type": "cancel", "id": "x"}))
                    frames = await recv_until(ws, lambda m: m.get("id") == "x" and m["type"] != "result")
                    assert frames[-1]["type"] == "cancelled", frames
                await ws.send(json.dumps({"type": "generate", "id": "x", "seed": 7100, "format": "png"}))
                frames = await recv_until(ws, lambda m: m.get("id") == "x")
                assert frames[-1]["type"] == "result", frames
            finally:
                await ws.close()

        run(main())
    finally:
        s.stop()


# -- auth and origins -----------------------------------------------------------------------------


def test_auth_accepted_by_header_and_by_hello(srv) -> None:
    async def main() -> None:
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            assert (await c.generate(seed=1, format="png")).seed == 1
        async with await BridgeClient.connect(srv.url, token=TOKEN, token_in_hello=True) as c:
            assert (await c.generate(seed=1, format="png")).cached

    run(main())


def test_auth_refused(srv) -> None:
    async def main() -> None:
        with pytest.raises(InvalidStatus) as e:  # wrong header: HTTP 401 at the handshake
            await raw_connect(srv.url, additional_headers={"Authorization": "Bearer wrong"})
        assert e.value.response.status_code == 401
        with pytest.raises(RequestError) as e2:
            await BridgeClient.connect(srv.url, token="wrong", token_in_hello=True)
        assert e2.value.code == "unauthorized"
        ws = await raw_connect(srv.url)  # no token at all: first message is not a hello with a token
        await ws.send(json.dumps({"type": "generate", "id": "x", "seed": 1, "format": "png"}))
        err = await recv_json(ws)
        validate(err)
        assert err["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1008

    run(main())


def test_hello_timeout() -> None:
    s = ServerThread(tokens=[TOKEN], hello_timeout_s=0.3)
    try:
        async def main() -> None:
            ws = await raw_connect(s.url)
            err = await recv_json(ws, timeout=5)
            assert err["code"] == "unauthorized"
            await asyncio.sleep(0.2)
            assert ws.close_code == 1008

        run(main())
    finally:
        s.stop()


def test_origins(srv) -> None:
    async def main() -> None:
        with pytest.raises(InvalidStatus) as e:
            await raw_connect(srv.url, origin="https://evil.example", additional_headers=_hdr())
        assert e.value.response.status_code == 403
        ws = await raw_connect(srv.url, origin="https://game.example")  # browser: token in hello
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "token": TOKEN}))
        assert (await recv_json(ws))["type"] == "hello"
        await ws.close()

    run(main())


def test_healthz(srv) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/healthz")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 200 and body["status"] == "ok"


# -- limits ---------------------------------------------------------------------------------------


def test_limits_in_flight_duplicate_id_and_message_size() -> None:
    s = ServerThread(max_in_flight=3, max_batch=1, max_wait_ms=0)
    try:
        async def main() -> None:
            ws = await raw_connect(s.url)
            for i in range(5):
                await ws.send(json.dumps({"type": "generate", "id": f"f{i}", "seed": 7000 + i, "format": "png"}))
            await ws.send(json.dumps({"type": "generate", "id": "f0", "seed": 1, "format": "png"}))
            frames = await recv_until(ws, lambda m: m.get("type") == "error" and m["id"] == "f0")
            errs = [m for m in frames if isinstance(m, dict) and m["type"] == "error"]
            assert [(e["id"], e["code"]) for e in errs] == [("f3", "too_large"), ("f4", "too_large"),
                                                            ("f0", "bad_request")]
            for e in errs:
                validate(e)
            await ws.send("x" * (70 * 1024))  # past WS_MAX_MESSAGE_BYTES: close 1009
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1009
            async with await BridgeClient.connect(s.url) as c:  # still serving
                assert (await c.generate(seed=7100, format="png")).seed == 7100

        run(main())
    finally:
        s.stop()


def test_limits_rate_flood_queue_and_connections() -> None:
    s = ServerThread(rate_per_s=5, rate_burst=5, max_strikes=20, queue_max=2, max_batch=1, max_wait_ms=0,
                     max_connections=3)
    try:
        async def main() -> None:
            ws = await raw_connect(s.url)
            for _ in range(8):  # burst of 5, then `busy` with retry_after_ms
                await ws.send(json.dumps({"type": "stats"}))
            frames = [await recv_json(ws) for _ in range(8)]
            busy = [f for f in frames if f["type"] == "error"]
            assert len(busy) >= 2 and all(b["code"] == "busy" and b["retry_after_ms"] > 0 for b in busy)
            for _ in range(40):  # a flood: closed with 1008
                try:
                    await ws.send(json.dumps({"type": "stats"}))
                except ConnectionClosed:
                    break
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1008

            # the generation queue (2 jobs): the third distinct request is `busy` at once
            ws2 = await raw_connect(s.url)
            for i in range(3):
                await ws2.send(json.dumps({"type": "generate", "id": f"q{i}", "seed": 8000 + i, "format": "png"}))
            frames = await recv_until(ws2, lambda m: m.get("type") == "error")
            assert frames[-1]["id"] == "q2" and frames[-1]["code"] == "busy" and frames[-1]["retry_after_ms"] > 0

            # connection limit: HTTP 503
            ws3 = await raw_connect(s.url)
            ws4 = await raw_connect(s.url)
            with pytest.raises(InvalidStatus) as e:
                await raw_connect(s.url)
            assert e.value.response.status_code == 503
            for w in (ws2, ws3, ws4):
                await w.close()
            await asyncio.sleep(0.2)
            async with await BridgeClient.connect(s.url) as c:
                assert (await c.generate(seed=8100, format="png")).seed == 8100

        run(main())
    finally:
        s.stop()


def test_client_disconnects_mid_request(srv) -> None:
    async def main() -> None:
        ws = await raw_connect(srv.url, additional_headers=_hdr())
        for i in range(10):
            await ws.send(json.dumps({"type": "generate", "id": f"d{i}", "seed": 9000 + i, "format": "png"}))
        ws.transport.abort()  # vanish without a closing handshake
        await asyncio.sleep(0.5)
        async with await BridgeClient.connect(srv.url, token=TOKEN) as c:
            r = await c.generate(seed=9100, format="png")
            assert r.seed == 9100
            for _ in range(50):
                st = await c.stats()
                if st["in_flight"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert st["in_flight"] == 0

    run(main())


# -- disk cache, shutdown -------------------------------------------------------------------------


def test_disk_cache_shared_between_replicas(tmp_path) -> None:
    async def ask(url: str):
        async with await BridgeClient.connect(url) as c:
            return await c.generate(seed=4242, format="png")

    a = ServerThread(cache_dir=str(tmp_path))
    try:
        first = run(ask(a.url))
    finally:
        a.stop()
    b = ServerThread(cache_dir=str(tmp_path))  # a fresh replica, same folder
    try:
        second = run(ask(b.url))
    finally:
        b.stop()
    assert not first.cached and second.cached and second.sha256 == first.sha256


def test_graceful_shutdown_finishes_work_in_flight() -> None:
    s = ServerThread(max_batch=1, max_wait_ms=0)

    async def main() -> None:
        c = await BridgeClient.connect(s.url)
        tasks = [asyncio.ensure_future(c.generate(seed=11_000 + i, format="png")) for i in range(8)]
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        stopper = loop.run_in_executor(None, s.stop, 20.0)
        await asyncio.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)  # draining: healthz says 503
        try:
            conn.request("GET", "/healthz")
            assert conn.getresponse().status == 503
        except (ConnectionError, OSError):
            pass  # already closed: also fine
        finally:
            conn.close()
        res = await asyncio.gather(*tasks)
        assert sorted(r.seed for r in res) == [11_000 + i for i in range(8)]
        await stopper
        for _ in range(50):
            if c.ws.close_code is not None:
                break
            await asyncio.sleep(0.05)
        assert c.ws.close_code == 1001
        with pytest.raises((OSError, InvalidStatus, asyncio.TimeoutError)):
            await raw_connect(s.url, open_timeout=2)

    run(main())


# -- commands -------------------------------------------------------------------------------------


def test_request_command_and_sync_helper(srv, tmp_path) -> None:
    out = tmp_path / "face.png"
    env = {**os.environ, "CHIBI_META_TOKEN": TOKEN}
    p = subprocess.run(
        [sys.executable, "-m", "chibi_meta", "request", srv.url, "--seed", "31", "--attr", "skin=tan",
         "--format", "png", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert p.returncode == 0, p.stderr
    header = json.loads(p.stdout)
    assert header["seed"] == 31 and header["attributes"]["skin"] == "tan"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == header["sha256"]
    bad = subprocess.run(
        [sys.executable, "-m", "chibi_meta", "request", srv.url, "--attr", "nose=big", "--format", "png",
         "--out", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert bad.returncode == 2 and "unknown_attribute" in bad.stderr and "allowed" in bad.stderr
    r = request(srv.url, token=TOKEN, seed=31, attributes={"skin": "tan"}, format="png")
    assert r.sha256 == header["sha256"]


def test_request_command_morph_targets(srv, tmp_path) -> None:
    env = {**os.environ, "CHIBI_META_TOKEN": TOKEN}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "chibi_meta", "request", srv.url, "--seed", "32",
                               "--texture-size", "256", *args], capture_output=True, text=True, timeout=120, env=env)

    out = tmp_path / "a.glb"
    p = cli("--morph-targets", "none", "--out", str(out))
    assert p.returncode == 0, p.stderr
    header = json.loads(p.stdout)
    validate(header)
    assert header["morph_targets"] == ["none"] and _target_names(_gltf(out.read_bytes())) == []
    p = cli("--morph-targets", "oculus, vrm", "--format", "vrm", "--out", str(tmp_path / "b.vrm"))
    assert p.returncode == 0, p.stderr
    header = json.loads(p.stdout)
    assert header["morph_targets"] == ["vrm", "oculus"]
    r = request(srv.url, token=TOKEN, seed=32, format="vrm", texture_size=256, morph_targets=("vrm", "oculus"))
    assert r.sha256 == header["sha256"] and r.cached
    assert set(_target_names(_gltf(r.data))) == _expected_names(["vrm", "oculus"])
    for bad in ("vrm,visemes", "none,vrm", ","):
        p = cli("--morph-targets", bad, "--out", str(tmp_path / "x.glb"))
        assert p.returncode == 2, (bad, p.stderr)
        assert "vrm, oculus, arkit, none" in p.stderr, p.stderr
        assert not (tmp_path / "x.glb").exists()


def test_serve_command_starts_and_stops_on_sigterm(tmp_path) -> None:
    model = SHIPPED_MODEL if SHIPPED_MODEL.exists() else small_model_path()
    args = [sys.executable, "-m", "chibi_meta", "serve", "--port", "0", "--model", str(model), "--log-json",
            "--torch-threads", "1", "--cache-dir", str(tmp_path / "cache")]
    if not have_packager():
        args.append("--no-warmup")
    p = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.time() + 120
        while time.time() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            if line.startswith("chibi-meta serve: listening on"):
                url = line.strip().rsplit(" ", 1)[-1]
                break
        assert url, "server did not start"
        r = request(url, seed=3, format="png")
        assert r.seed == 3
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        events = [json.loads(line).get("event") for line in err.splitlines() if line.startswith("{")]
        assert "draining" in events and "stopped" in events
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_shutdown_grace_expiry_answers_what_is_left() -> None:
    s = ServerThread(max_batch=1, max_wait_ms=0)

    async def main() -> None:
        ws = await raw_connect(s.url)
        for i in range(30):
            await ws.send(json.dumps({"type": "generate", "id": f"g{i}", "seed": 12_000 + i, "format": "png"}))
        await asyncio.sleep(0.05)
        stopper = asyncio.get_running_loop().run_in_executor(None, s.stop, 0.0)  # no grace at all
        replies: dict[str, str] = {}
        with pytest.raises(ConnectionClosed):
            while True:
                frame = await asyncio.wait_for(ws.recv(), 20)
                if isinstance(frame, str):
                    m = json.loads(frame)
                    validate(m)
                    replies[m["id"]] = m["type"] if m["type"] == "result" else m["code"]
        await stopper
        assert ws.close_code == 1001
        assert set(replies.values()) <= {"result", "internal", "busy"}
        assert "internal" in replies.values() and len(replies) == 30  # every request told, none left hanging

    run(main())
