"""Abuse: a corpus of bad frames and property-based fuzzing of every request message, over real sockets.

Each bad input must get its documented error code (or close code), the server must stay up, and
a valid request afterwards must be served.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from bridge_support import ServerThread, load_generator, raw_connect, recv_json, recv_until, run, validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from chibi_meta import limits
from chibi_meta.bridge import protocol as P
from chibi_meta.errors import ChibiError

CORPUS_FILE = Path(__file__).parent / "abuse_corpus" / "cases.jsonl"
CORPUS = [json.loads(line) for line in CORPUS_FILE.read_text().splitlines()]
VALID = {"type": "generate", "id": "valid", "seed": 424242, "format": "png"}


@pytest.fixture(scope="module")
def srv():
    s = ServerThread(rate_per_s=100_000, rate_burst=100_000, max_in_flight=8)
    yield s
    s.stop()


async def _served(ws: Any, rid: str = "valid") -> None:
    await ws.send(json.dumps({**VALID, "id": rid}))
    frames = await recv_until(ws, lambda m: m.get("id") == rid)
    header = frames[-1]
    assert header["type"] == "result", header
    validate(header)
    data = await asyncio.wait_for(ws.recv(), 20)
    assert isinstance(data, bytes) and len(data) == header["byte_length"]


def test_corpus_size() -> None:
    assert len(CORPUS) >= 40


def test_corpus(srv) -> None:
    async def main() -> list[str]:
        failures = []
        ws = await raw_connect(srv.url)
        for case in CORPUS:
            frame = bytes.fromhex(case["binary_hex"]) if "binary_hex" in case else case["text"]
            await ws.send(frame)
            reply = await recv_json(ws)
            try:
                validate(reply)
                assert reply["type"] == "error" and reply["code"] == case["expect"], reply
                assert reply["message"]
            except AssertionError as e:
                failures.append(f"{case['name']}: {e}")
            await _served(ws)  # the connection and the server keep working
        await ws.close()
        return failures

    failures = run(main(), timeout=120)
    assert not failures, "\n".join(failures)


def test_huge_messages_close_1009_and_server_stays_up(srv) -> None:
    async def main() -> None:
        for frame in ("x" * (limits.WS_MAX_MESSAGE_BYTES + 1), b"\0" * (70 * 1024),
                      json.dumps({"type": "generate", "id": "a", "attributes": {"k": "v" * 70_000}})):
            ws = await raw_connect(srv.url)
            await ws.send(frame)
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1009
        ws = await raw_connect(srv.url)
        await _served(ws)
        await ws.close()

    run(main())


def test_too_many_in_flight_and_a_flood(srv) -> None:
    async def main() -> None:
        ws = await raw_connect(srv.url)
        for i in range(20):  # max_in_flight is 8 on this server
            await ws.send(json.dumps({"type": "generate", "id": f"m{i}", "seed": 123_000 + i, "format": "png"}))
        seen: dict[str, str] = {}
        while len(seen) < 20:
            frame = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(frame, str):
                m = json.loads(frame)
                validate(m)
                seen[m["id"]] = m["type"] if m["type"] == "result" else m["code"]
        assert list(seen.values()).count("result") >= 8
        assert set(seen.values()) <= {"result", "too_large"} and "too_large" in seen.values()
        await ws.close()

        flood = await raw_connect(srv.url)  # 2000 messages as fast as possible: every one answered
        for _ in range(2000):
            await flood.send('{"type":"stats"}')
        for _ in range(2000):
            assert (await recv_json(flood))["type"] == "stats"
        await _served(flood)
        await flood.close()

    run(main(), timeout=120)


def test_rate_limited_flood_is_closed_and_server_stays_up() -> None:
    s = ServerThread(rate_per_s=20, rate_burst=20, max_strikes=50)
    try:
        async def main() -> None:
            ws = await raw_connect(s.url)
            n_busy = 0
            try:
                for _ in range(5000):
                    await ws.send("garbage")
                while True:
                    m = await recv_json(ws, timeout=10)
                    validate(m)
                    n_busy += m["code"] == "busy"
            except ConnectionClosed:
                pass
            assert ws.close_code == 1008 and n_busy >= 1
            ws2 = await raw_connect(s.url)
            await _served(ws2)
            await ws2.close()

        run(main(), timeout=60)
    finally:
        s.stop()


# -- property-based fuzzing of every request message -------------------------------------------------

anything = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False),  # torch flushes subnormals
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)
names = load_generator().schema.names


def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> st.SearchStrategy:
    """Valid three times in four, so that most examples get past the first field."""
    return st.integers(0, 3).flatmap(lambda i: invalid if i == 0 else valid)


ids = mostly(st.text(min_size=1, max_size=20), st.text(min_size=120, max_size=140) | anything)


def _attr_values() -> st.SearchStrategy:
    gen = load_generator()
    valid = st.lists(st.sampled_from([(a.name, v) for a in gen.schema.attributes for v in a.values]), max_size=3)
    invalid = st.dictionaries(st.sampled_from([*names, "nose"]), st.text(max_size=8) | anything, max_size=3)
    return mostly(valid.map(dict), invalid | anything)


def _message(kind: str, required: dict[str, st.SearchStrategy], optional: dict[str, st.SearchStrategy]):
    extra = st.dictionaries(st.sampled_from(["extra", "Seed", "token", "id", "type"]), anything, min_size=1,
                            max_size=1)
    body = st.fixed_dictionaries({"type": st.just(kind), **required}, optional=optional)
    return st.tuples(body, mostly(st.just({}), extra)).map(lambda t: {**t[0], **t[1]})


generate_msgs = _message("generate", {"id": ids}, {
    "seed": mostly(st.integers(0, 2**32 - 1) | st.none(), st.integers(-3, 2**33) | anything),
    "attributes": _attr_values(),
    "format": mostly(st.just("png"), st.sampled_from(["glb", "vrm", "obj"]) | anything),
    "texture_size": mostly(st.sampled_from([256, 512, 1024]), st.sampled_from([100, 512.0]) | anything),
    "texture_format": mostly(st.sampled_from(["png", "jpeg", "webp"]), st.just("gif") | anything),
    "truncation": mostly(st.floats(0, 2, allow_subnormal=False),
                         st.floats(-1, 3, allow_nan=False, allow_subnormal=False) | anything),
    "morph_targets": mostly(st.lists(st.sampled_from(["vrm", "oculus", "arkit"]), min_size=1, max_size=4)
                            | st.just(["none"]) | st.none(),
                            st.lists(st.sampled_from(["vrm", "none", "bogus", ""]), max_size=3) | anything),
})
generate_msgs = generate_msgs | st.fixed_dictionaries({"type": st.just("generate")}, optional={"seed": anything})
cancel_msgs = _message("cancel", {"id": ids}, {}) | st.just({"type": "cancel"})
hello_msgs = _message("hello", {}, {"protocol": mostly(st.just(1), anything),
                                    "token": mostly(st.text(max_size=30), anything),
                                    "client": mostly(st.text(max_size=30), anything)})
stats_msgs = _message("stats", {}, {})


def _expected(obj: dict[str, Any]) -> tuple[str, str | None]:
    """What the server must answer: ("error", code) | ("result"|"hello"|"stats"|"none", None)."""
    try:
        msg = P.parse_object(P.decode_frame(json.dumps(obj)))
        if isinstance(msg, P.Generate):
            load_generator().resolve(msg.seed or 0, msg.attributes)
    except ChibiError as e:
        return "error", e.code
    return {P.Generate: "result", P.Cancel: "none", P.Hello: "hello", P.StatsRequest: "stats"}[type(msg)], None


async def _check(url: str, obj: dict[str, Any]) -> None:
    kind, code = _expected(obj)
    if kind == "result" and obj.get("format", "glb") != "png":
        obj = {**obj, "format": "png"}  # keep fuzzing fast: packaging is tested elsewhere
    ws = await raw_connect(url)
    try:
        await ws.send(json.dumps(obj))
        await ws.send('{"type":"stats"}')  # a barrier: everything answered inline comes before it
        frames = await recv_until(ws, lambda m: m["type"] == "stats")
        msgs = [f for f in frames if isinstance(f, dict)]
        for m in msgs:
            validate(m)
        if kind == "error":
            assert msgs[0]["type"] == "error" and msgs[0]["code"] == code, (obj, msgs[0])
            assert msgs[0]["id"] == P.peek_id(obj)
        elif kind in ("hello", "stats"):
            assert msgs[0]["type"] == kind
        elif kind == "none":
            assert len(msgs) == 1
        else:
            if not any(m["type"] == "result" for m in msgs):  # not finished before the barrier
                frames += await recv_until(ws, lambda m: m["type"] == "result")
                frames.append(await asyncio.wait_for(ws.recv(), 20))
            i = next(i for i, f in enumerate(frames) if isinstance(f, dict) and f["type"] == "result")
            validate(frames[i])
            assert frames[i]["id"] == obj["id"]
            assert isinstance(frames[i + 1], bytes) and len(frames[i + 1]) == frames[i]["byte_length"]
        await _served(ws)
    finally:
        await ws.close()


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])


@FUZZ
@given(generate_msgs)
def test_fuzz_generate(srv, obj: dict) -> None:
    run(_check(srv.url, obj))


@FUZZ
@given(cancel_msgs)
def test_fuzz_cancel(srv, obj: dict) -> None:
    run(_check(srv.url, obj))


@FUZZ
@given(hello_msgs)
def test_fuzz_hello(srv, obj: dict) -> None:
    run(_check(srv.url, obj))


@FUZZ
@given(stats_msgs)
def test_fuzz_stats(srv, obj: dict) -> None:
    run(_check(srv.url, obj))
