"""Protocol v1 without sockets: parsing, serialisation vs docs/schemas, cache, batcher, auth, limits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from bridge_support import ROOT, SCHEMAS, validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chibi_meta import limits
from chibi_meta.avatar import names
from chibi_meta.bridge import protocol as P
from chibi_meta.bridge.auth import TokenAuth
from chibi_meta.bridge.batcher import Batcher
from chibi_meta.bridge.cache import Asset, AssetCache
from chibi_meta.bridge.server import TokenBucket
from chibi_meta.errors import ChibiError

BRIDGE_LIMITS = [
    "WS_MAX_MESSAGE_BYTES", "WS_MAX_ID_CHARS", "WS_MAX_IN_FLIGHT", "WS_RATE_PER_S", "WS_RATE_BURST",
    "WS_MAX_STRIKES", "WS_MAX_CONNECTIONS", "WS_MAX_QUEUE_FRAMES", "WS_WRITE_LIMIT", "WS_HELLO_TIMEOUT_S",
    "WS_PING_INTERVAL_S", "WS_PING_TIMEOUT_S", "WS_OPEN_TIMEOUT_S", "WS_CLOSE_TIMEOUT_S", "BATCH_MAX_SIZE",
    "BATCH_MAX_WAIT_MS", "QUEUE_MAX", "CACHE_MEMORY_BYTES", "CACHE_DISK_BYTES", "SHUTDOWN_GRACE_S",
]


def test_bridge_limits_are_in_the_table() -> None:
    table = (ROOT / "docs" / "limits.md").read_text("utf-8")
    for name in BRIDGE_LIMITS:
        m = re.search(rf"^\| `{name}` \| ([^ |]+)", table, re.M)
        assert m, f"{name} missing from docs/limits.md"
        assert float(m.group(1)) == float(getattr(limits, name)), name


def test_parse_valid_messages() -> None:
    g = P.parse_client_message('{"type":"generate","id":"a","seed":5,"attributes":{"skin":"tan"},"format":"vrm",'
                               '"texture_size":256,"texture_format":"webp","truncation":0.7}')
    assert g == P.Generate("a", 5, {"skin": "tan"}, "vrm", 256, "webp", 0.7)
    assert P.parse_client_message('{"type":"generate","id":"b"}') == P.Generate("b", None)
    assert P.parse_client_message('{"type":"cancel","id":"a"}') == P.Cancel("a")
    assert P.parse_client_message('{"type":"stats"}') == P.StatsRequest()
    assert P.parse_client_message('{"type":"hello","protocol":1,"token":"t"}') == P.Hello(1, "t")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00\x01", "bad_request"),
        ("not json", "bad_request"),
        ("[1,2]", "bad_request"),
        ('{"type":"nope"}', "bad_request"),
        ('{"type":"generate","id":"a","extra":1}', "bad_request"),
        ('{"type":"generate","id":"a","id":"b"}', "bad_request"),
        ('{"type":"generate","id":"a","truncation":NaN}', "bad_request"),
        ('{"type":"generate","id":""}', "bad_request"),
        ('{"type":"generate","id":"a","seed":-1}', "invalid_value"),
        ('{"type":"generate","id":"a","seed":1.5}', "invalid_value"),
        ('{"type":"generate","id":"a","seed":true}', "invalid_value"),
        ('{"type":"generate","id":"a","format":"obj"}', "invalid_value"),
        ('{"type":"generate","id":"a","texture_size":300}', "invalid_value"),
        ('{"type":"generate","id":"a","truncation":1e400}', "invalid_value"),
        ('{"type":"generate","id":"a","attributes":[]}', "bad_request"),
        ('{"type":"generate","id":"a","attributes":{"skin":3}}', "invalid_value"),
        ('{"type":"hello","protocol":2}', "bad_request"),
        ("[" * 100_000 + "]" * 100_000, "too_large"),
    ],
)
def test_parse_errors_have_codes(frame: str | bytes, code: str) -> None:
    with pytest.raises(ChibiError) as e:
        P.parse_client_message(frame, max_bytes=10**6 if len(frame) < 10**5 else 1000)
    assert e.value.code == code


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, ("vrm", "oculus", "arkit")),
        (["vrm"], ("vrm",)),
        (["arkit", "vrm"], ("vrm", "arkit")),  # canonical order
        (["oculus", "vrm", "oculus"], ("vrm", "oculus")),  # repeats do not matter
        (["arkit", "oculus", "vrm"], ("vrm", "oculus", "arkit")),
        (["none"], ()),
    ],
)
def test_parse_morph_targets(value: object, want: tuple[str, ...]) -> None:
    obj = {"type": "generate", "id": "a", "format": "vrm"}
    if value is not None:
        obj["morph_targets"] = value
    g = P.parse_client_message(json.dumps(obj))
    assert isinstance(g, P.Generate) and g.morph_targets == want
    assert P.parse_client_message('{"type":"generate","id":"a","morph_targets":null}').morph_targets == want \
        if value is None else True
    validate(obj, "client_generate")


@pytest.mark.parametrize(
    "value",
    ["vrm", "vrm,oculus", 3, True, {"vrm": 1}, [], ["bogus"], ["VRM"], ["vrm", "nope"], [None], [["vrm"]], [3],
     ["none", "vrm"], ["vrm", "none"], ["x" * 5000]],
)
def test_morph_targets_errors_name_the_allowed_sets(value: object) -> None:
    frame = json.dumps({"type": "generate", "id": "a", "format": "glb", "morph_targets": value})
    for fmt in ("glb", "png"):  # validated for png too, though a png has no morph targets
        with pytest.raises(ChibiError) as e:
            P.parse_client_message(frame.replace('"glb"', f'"{fmt}"'))
        assert e.value.code == "invalid_value"
        assert "allowed: vrm, oculus, arkit, none" in str(e.value), str(e.value)
        assert len(str(e.value)) < 300  # the offending value is quoted shortened
    with pytest.raises(Exception):  # noqa: B017 - the published schema refuses it too
        validate(json.loads(frame), "client_generate")


def test_morph_target_sets_match_names_schemas_and_docs() -> None:
    assert P.MORPH_TARGET_SETS == (*names.MORPH_SETS, "none")
    assert P.DEFAULT_MORPH_TARGETS == names.DEFAULT_MORPH_SETS
    defs = json.loads((SCHEMAS / "defs.json").read_text("utf-8"))["$defs"]
    assert defs["morph_target_set"]["enum"] == list(P.MORPH_TARGET_SETS)
    assert defs["morph_targets"]["oneOf"][0]["items"]["enum"] == list(names.MORPH_SETS)
    gen = json.loads((SCHEMAS / "client_generate.json").read_text("utf-8"))
    assert gen["properties"]["morph_targets"]["default"] == list(names.DEFAULT_MORPH_SETS)
    doc = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)`(?: \(alone\))? \| (.*) \|$", doc, re.M)}
    for name in ("vrm", "oculus", "arkit", "none"):
        assert name in rows, f"docs/protocol.md has no row for the morph-target set {name!r}"
    for name in ("vrm", "oculus"):  # listed in full; arkit's 52 names are in docs/avatar.md
        listed = re.findall(r"`(\w+)`", rows[name].split(" (")[0] if name == "oculus" else rows[name])
        assert [n for n in listed if n != "neutral"] == list(names.MORPH_SETS[name]), name
    for extra in names.RPM_EXTRA:
        assert f"`{extra}`" in rows["arkit"]


def test_deeply_nested_json_is_a_bad_request() -> None:
    with pytest.raises(ChibiError) as e:
        P.parse_client_message("[" * 50_000 + "]" * 50_000, max_bytes=10**6)
    assert e.value.code == "bad_request"


def _req(**kw: object) -> P.ResolvedRequest:
    base = dict(seed=1, attributes={"a": "x", "b": "y"}, format="glb", texture_size=512, texture_format="png",
                truncation=1.0, model_id="m")
    base.update(kw)
    return P.ResolvedRequest(**base)  # type: ignore[arg-type]


def test_cache_key_is_canonical() -> None:
    assert _req().key() == _req(attributes={"b": "y", "a": "x"}).key()
    assert len({_req().key(), _req(seed=2).key(), _req(format="vrm").key(), _req(model_id="n").key(),
                _req(truncation=0.5).key(), _req(texture_size=256).key(), _req(texture_format="webp").key()}) == 7
    assert json.loads(_req().canonical())["v"] == 1


def test_cache_key_holds_morph_targets_for_models_only() -> None:
    choices = [("vrm", "oculus", "arkit"), ("vrm",), ("oculus",), ("arkit",), ("vrm", "oculus"), ()]
    for fmt in ("glb", "vrm"):
        keys = [_req(format=fmt, morph_targets=m).key() for m in choices]
        assert len(set(keys)) == len(choices), fmt
        assert _req(format=fmt).key() == keys[0]  # the default is every set
        assert json.loads(_req(format=fmt, morph_targets=()).canonical())["morph_targets"] == []
    png = {_req(format="png", texture_size=128, morph_targets=m).key() for m in choices}
    assert len(png) == 1  # the bare texture has no morph targets: one cache entry whatever the choice
    assert "morph_targets" not in json.loads(_req(format="png").canonical())


def test_server_messages_match_schemas() -> None:
    validate(json.loads(P.result_message("x", _req(), sha256="0" * 64, byte_length=10, cached=False)))
    for m, echoed in ((("vrm", "oculus", "arkit"), ["vrm", "oculus", "arkit"]), (("oculus",), ["oculus"]),
                      ((), ["none"])):
        msg = json.loads(P.result_message("x", _req(morph_targets=m), sha256="0" * 64, byte_length=10, cached=False))
        validate(msg)
        assert msg["morph_targets"] == echoed
    png = json.loads(P.result_message("x", _req(format="png", texture_size=128, morph_targets=()), sha256="0" * 64,
                                      byte_length=10, cached=False))
    validate(png)
    assert "morph_targets" not in png
    validate(json.loads(P.error_message("x", "busy", "full", retry_after_ms=5)))
    validate(json.loads(P.error_message(None, "bad_request", "bad")))
    validate(json.loads(P.cancelled_message("x")))
    assert json.loads(P.error_message("x", "weird", "m"))["code"] == "internal"


def test_schemas_are_valid_json_schema() -> None:
    import jsonschema

    names = sorted(p.stem for p in SCHEMAS.glob("*.json"))
    assert {"client_generate", "client_cancel", "client_hello", "client_stats", "server_hello", "server_result",
            "server_error", "server_cancelled", "server_stats"} <= set(names)
    for p in SCHEMAS.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(p.read_text("utf-8")))


# -- property-based: the sans-I/O parser never fails with anything but a coded ChibiError --------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_subnormal=False),  # subnormals: torch may flush them process-wide
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["generate", "cancel", "hello", "stats", "bogus"]) | json_values},
    optional={"id": st.text(max_size=140) | json_values, "seed": st.integers(-5, 2**33) | json_values,
              "attributes": st.dictionaries(st.sampled_from(["skin", "eyes", "zzz"]), json_values, max_size=3),
              "format": st.sampled_from(P.FORMATS) | json_values, "texture_size": st.sampled_from([256, 300, 512]),
              "texture_format": st.sampled_from(P.TEXTURE_FORMATS) | json_values,
              "truncation": st.floats(-1, 3, allow_subnormal=False) | json_values, "token": json_values,
              "protocol": json_values,
              "morph_targets": st.lists(st.sampled_from([*P.MORPH_TARGET_SETS, "bogus"]), max_size=4) | json_values,
              "junk": json_values},
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message_like)
def test_fuzz_parser_accepts_or_raises_coded_error(obj: dict) -> None:
    frame = json.dumps(obj)
    try:
        msg = P.parse_client_message(frame)
    except ChibiError as e:
        assert e.code in P.ERROR_CODES
        assert str(e)
        return
    kind = {P.Generate: "client_generate", P.Cancel: "client_cancel", P.Hello: "client_hello",
            P.StatsRequest: "client_stats"}[type(msg)]
    validate(obj, kind)  # whatever the parser accepts, the published schema accepts too


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzz_parser_on_garbage(frame: bytes | str) -> None:
    try:
        P.parse_client_message(frame)
    except ChibiError as e:
        assert e.code in P.ERROR_CODES


# -- cache, auth, rate limit, batcher ------------------------------------------------------------


def test_memory_cache_is_lru_by_bytes() -> None:
    c = AssetCache(memory_bytes=25)
    for k in "abc":
        c.put(k, Asset.of(k.encode() * 10))
    assert c.get_memory("a") is None and c.get_memory("c") is not None
    c.get_memory("b")
    c.put("d", Asset.of(b"d" * 10))
    assert c.get_memory("b") is not None and c.get_memory("c") is None
    c.put("big", Asset.of(b"x" * 100))  # larger than the whole cache: not stored
    assert c.get_memory("big") is None and c.stats()["bytes"] <= 25


def test_disk_cache_is_shared_and_bounded(tmp_path) -> None:
    keys = [f"{i:064x}" for i in range(5)]
    a = AssetCache(disk_dir=tmp_path, disk_bytes=350)
    for k in keys:
        a.put(k, Asset.of(b"z" * 100))
    files = list(tmp_path.glob("??/*.bin"))
    assert 1 <= len(files) <= 3
    assert not list(tmp_path.glob("**/*.tmp"))
    b = AssetCache(disk_dir=tmp_path)  # a second replica sees what the first wrote
    hit = b.get_disk(keys[-1])
    assert hit is not None and hit.data == b"z" * 100
    assert b.get_disk("../../etc/passwd") is None


def test_disk_cache_evicts_least_recently_used(tmp_path) -> None:
    keys = [f"{i:064x}" for i in range(4)]
    c = AssetCache(disk_dir=tmp_path, disk_bytes=350)
    for age, k in zip((300, 200, 100), keys[:3], strict=True):  # written 300, 200, 100 s ago
        c.put(k, Asset.of(b"z" * 100))
        t = time.time() - age
        os.utime(c._path(k), (t, t))
    assert c.get_disk(keys[0]) is not None  # the oldest file is used again: now the newest
    c.put(keys[3], Asset.of(b"z" * 100))  # 400 > 350 bytes: evict down to 315, i.e. one file
    left = {p.stem for p in tmp_path.glob("??/*.bin")}
    assert left == {keys[0], keys[2], keys[3]}  # keys[1], least recently used, went


def test_token_auth() -> None:
    a = TokenAuth(["s3cret", "next"])
    assert a.required and a.check("s3cret") and a.check("next")
    assert not a.check("s3cre") and not a.check(None) and not a.check("")
    assert a.check_header("Bearer s3cret") is True and a.check_header("bearer next") is True
    assert a.check_header("Basic s3cret") is False and a.check_header(None) is None
    assert TokenAuth().check(None) and not TokenAuth().required


def test_token_bucket() -> None:
    b = TokenBucket(rate=1.0, burst=3)
    assert [b.take() for _ in range(4)] == [True, True, True, False]
    assert b.retry_after_ms() >= 1


def test_batcher_batches_and_skips_cancelled() -> None:
    sizes: list[int] = []

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b: Batcher[int, int] = Batcher(lambda xs: [x * 2 for x in xs], pool, max_batch=4, max_wait_ms=20,
                                           on_batch=lambda n, ms: sizes.append(n))
            b.start()
            futs = [b.submit(i) for i in range(10)]
            futs[9].cancel()
            res = await asyncio.gather(*futs[:9])
            assert res == [i * 2 for i in range(9)]
            await b.stop()

    asyncio.run(main())
    assert max(sizes) == 4 and sum(sizes) == 9


def test_batcher_cuts_batches_to_the_chunk_size() -> None:
    sizes: list[int] = []

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b: Batcher[int, int] = Batcher(lambda xs: xs, pool, max_batch=32, max_wait_ms=50, align=4,
                                           on_batch=lambda n, ms: sizes.append(n))
            futs = [b.submit(i) for i in range(10)]  # all queued before the batcher starts
            b.start()
            assert await asyncio.gather(*futs) == list(range(10))
            await b.stop()

    asyncio.run(main())
    assert sizes == [8, 2]
