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
