"""Attribute schemas: the named, human-readable labels a model is conditioned on.

A schema is a list of categorical attributes, each with its allowed values in a
fixed order (the order is the class index the networks see). For the built-in
DiceBear data each value also records the DiceBear option value it maps to.
Schemas serialise to JSON so that they travel inside datasets and checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from chibi_meta.errors import AttributeNameError, AttributeValueError, DataError
from chibi_meta.limits import MAX_SEED

NONE = "none"


@dataclass(frozen=True)
class Attribute:
    """One categorical attribute: a name, its values and (optionally) their DiceBear mapping."""

    name: str
    values: tuple[str, ...]
    option: str | None = None  # DiceBear option key, e.g. "hairColor"
    dicebear: tuple[str, ...] | None = None  # DiceBear value per entry of ``values`` ("" = absent)
    probs: tuple[float, ...] | None = None  # the data's marginal distribution over ``values``

    def index(self, value: object) -> int:
        if not isinstance(value, str):
            raise AttributeValueError(
                f"attribute {self.name!r} takes a string, got {type(value).__name__} {value!r}; "
                f"allowed: {', '.join(self.values)}"
            )
        try:
            return self.values.index(value)
        except ValueError:
            raise AttributeValueError(
                f"unknown value {value!r} for attribute {self.name!r}; allowed: {', '.join(self.values)}"
            ) from None

    def to_json(self) -> dict:
        out: dict = {"name": self.name, "values": list(self.values)}
        if self.option:
            out["option"] = self.option
        if self.dicebear:
            out["dicebear"] = list(self.dicebear)
        if self.probs:
            out["probs"] = [round(p, 6) for p in self.probs]
        return out

    @classmethod
    def from_json(cls, d: Mapping) -> Attribute:
        return cls(
            name=str(d["name"]),
            values=tuple(str(v) for v in d["values"]),
            option=d.get("option"),
            dicebear=tuple(d["dicebear"]) if d.get("dicebear") else None,
            probs=tuple(float(p) for p in d["probs"]) if d.get("probs") else None,
        )


@dataclass(frozen=True)
class AttributeSchema:
    """An ordered set of attributes. ``name`` identifies where it came from."""

    name: str
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.attributes)

    def get(self, name: str) -> Attribute:
        for a in self.attributes:
            if a.name == name:
                return a
        raise AttributeNameError(f"unknown attribute {name!r}; allowed: {', '.join(self.names) or '(none)'}")

    def validate(self, attrs: Mapping[str, object] | None) -> dict[str, str]:
        """Check names, types and values; returns a plain dict. Raises with the allowed values."""
        if attrs is None:
            return {}
        if not isinstance(attrs, Mapping):
            raise AttributeValueError(f"attributes must be an object of name -> value, got {type(attrs).__name__}")
        out: dict[str, str] = {}
        for k, v in attrs.items():
            a = self.get(str(k))
            a.index(v)
            out[a.name] = v  # type: ignore[assignment]
        return out

    def encode(self, attrs: Mapping[str, str]) -> list[int]:
        """Full attribute dict -> class indices in schema order."""
        return [a.index(attrs[a.name]) for a in self.attributes]

    def decode(self, idx: Sequence[int]) -> dict[str, str]:
        return {a.name: a.values[int(i)] for a, i in zip(self.attributes, idx, strict=True)}

    def resolve(self, seed: int, attrs: Mapping[str, object] | None = None) -> dict[str, str]:
        """Validate ``attrs`` and fill every missing attribute from the data's distribution.

        Deterministic in ``seed``; each attribute draws its own number whether or not it is
        given, so fixing one attribute never changes the values sampled for the others.
        """
        check_seed(seed)
        given = self.validate(attrs)
        rng = np.random.default_rng([int(seed), 0xA77B])
        draws = rng.random(len(self.attributes))
        out: dict[str, str] = {}
        for a, u in zip(self.attributes, draws, strict=True):
            if a.name in given:
                out[a.name] = given[a.name]
                continue
            p = np.asarray(a.probs if a.probs else [1.0] * len(a.values), dtype=np.float64)
            cdf = np.cumsum(p / p.sum())
            out[a.name] = a.values[min(int(np.searchsorted(cdf, u, side="right")), len(a.values) - 1)]
        return out

    def with_probs(self, counts: Sequence[Sequence[int]]) -> AttributeSchema:
        """A copy whose marginals are the given per-value counts."""
        attrs = []
        for a, c in zip(self.attributes, counts, strict=True):
            tot = float(sum(c)) or 1.0
            attrs.append(Attribute(a.name, a.values, a.option, a.dicebear, tuple(x / tot for x in c)))
        return AttributeSchema(self.name, tuple(attrs))

    def to_json(self) -> dict:
        return {"name": self.name, "attributes": [a.to_json() for a in self.attributes]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, d: Mapping) -> AttributeSchema:
        try:
            return cls(str(d["name"]), tuple(Attribute.from_json(a) for a in d["attributes"]))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"malformed attribute schema: {e}") from None


def check_seed(seed: object) -> int:
    """Seeds are integers in [0, MAX_SEED]."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise AttributeValueError(f"seed must be an integer in [0, {MAX_SEED}], got {type(seed).__name__} {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise AttributeValueError(f"seed {seed} out of range; allowed: integers in [0, {MAX_SEED}]")
    return int(seed)


# ---------------------------------------------------------------------------------------------
# The built-in DiceBear `adventurer` schema. Colour names are ours; hex values are DiceBear's.
HAIR_COLORS = {
    "black": "0e0e0e", "blonde": "e5d7a3", "sandy": "b9a05f", "olive": "796a45", "teal": "85c2c6",
    "brown": "6a4e35", "chestnut": "562306", "grey": "afafaf", "green": "3eac2c", "pink": "dba3be",
    "plum": "592454", "copper": "ac6511", "ginger": "cb6820", "red": "ab2a18",
}  # fmt: skip
SKIN_COLORS = {"light": "f2d3b1", "medium": "ecad80", "tan": "9e5622", "dark": "763900"}
HAIR_STYLES = [f"long{i:02d}" for i in range(1, 27)] + [f"short{i:02d}" for i in range(1, 20)]
EYES = [f"variant{i:02d}" for i in range(1, 27)]
MOUTHS = [f"variant{i:02d}" for i in range(1, 31)]
GLASSES = [f"variant{i:02d}" for i in range(1, 6)]


def _attr(name: str, option: str, mapping: Mapping[str, str], probs: tuple[float, ...] | None = None) -> Attribute:
    return Attribute(name, tuple(mapping), option, tuple(mapping.values()), probs)


# Every variant is drawn uniformly; glasses appear with probability 25 % (DiceBear's default is
# 10 %: we draw more so that the model sees each of the 5 glasses often enough).
_GLASSES_PROBS = (0.75,) + (0.25 / len(GLASSES),) * len(GLASSES)


ADVENTURER = AttributeSchema(
    "dicebear-adventurer",
    (
        _attr("hair_color", "hairColor", {k: "#" + v for k, v in HAIR_COLORS.items()}),
        _attr("hair_style", "hairVariant", {v: v for v in HAIR_STYLES}),
        _attr("skin", "skinColor", {k: "#" + v for k, v in SKIN_COLORS.items()}),
        _attr("eyes", "eyesVariant", {v.replace("variant", "eyes"): v for v in EYES}),
        _attr("mouth", "mouthVariant", {v.replace("variant", "mouth"): v for v in MOUTHS}),
        _attr(
            "glasses",
            "glassesVariant",
            {NONE: "", **{v.replace("variant", "glasses"): v for v in GLASSES}},
            _GLASSES_PROBS,
        ),
    ),
)


def hair_rgb(attrs: Mapping[str, str]) -> tuple[int, int, int] | None:
    """sRGB of the hair colour named in ``attrs`` (built-in names only), else None."""
    return _rgb(HAIR_COLORS.get(attrs.get("hair_color", "")))


def skin_rgb(attrs: Mapping[str, str]) -> tuple[int, int, int] | None:
    """sRGB of the skin tone named in ``attrs`` (built-in names only), else None."""
    return _rgb(SKIN_COLORS.get(attrs.get("skin", "")))


def _rgb(hexv: str | None) -> tuple[int, int, int] | None:
    if not hexv:
        return None
    return int(hexv[0:2], 16), int(hexv[2:4], 16), int(hexv[4:6], 16)
