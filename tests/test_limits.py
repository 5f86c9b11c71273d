"""Every limit in chibi_meta/limits.py appears in docs/limits.md with the same value."""

from __future__ import annotations

import re

from chibi_meta import limits
from tests.conftest import ROOT


def test_every_limit_is_documented_with_its_value() -> None:
    table = (ROOT / "docs" / "limits.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([A-Z_0-9]+)` \| ([^|]+) \|", table, re.M)}
    consts = {k: v for k, v in vars(limits).items() if k.isupper() and isinstance(v, (int, float))}
    assert consts, "no limits found"
    missing = sorted(set(consts) - set(rows))
    assert not missing, f"limits missing from docs/limits.md: {missing}"
    stale = sorted(set(rows) - set(consts))
    assert not stale, f"docs/limits.md documents limits that no longer exist: {stale}"
    for k, v in consts.items():
        documented = rows[k].split()[0]
        assert float(documented) == float(v), f"{k}: docs say {documented}, code says {v}"


def test_serve_caps_malloc_arenas_unless_the_environment_chose(monkeypatch) -> None:
    """`serve` calls mallopt(M_ARENA_MAX, SERVER_MALLOC_ARENAS) on glibc; MALLOC_ARENA_MAX in the
    environment (glibc read it at start) wins, and 0 turns the cap off."""
    import platform

    from chibi_meta.bridge.cli import limit_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(0) is False
    if platform.libc_ver()[0] == "glibc":
        assert limit_malloc_arenas(limits.SERVER_MALLOC_ARENAS) is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(limits.SERVER_MALLOC_ARENAS) is False
