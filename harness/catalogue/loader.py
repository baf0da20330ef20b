"""Reading the catalogue: YAML files of cases, each case possibly a matrix over hostings, routes
and stream modes (``harness/cases/*.yaml``, documented in ``docs/catalogue.md``)."""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import fields
from importlib import resources
from typing import Any

import yaml

from .model import ROUTES, Case, ClientRequest, Expectation

HOSTING_KEYS = ("huggingface", "ollama", "llamacpp", "gguf")
SEED = {
    "chat": {"messages": [{"role": "system", "content": "You are a mathematician"},
                          {"role": "user", "content": "What is 1+1?"}]},
    "completions": {"prompt": "What is 1+1?"},
}
_MATRIX = {"hosting": HOSTING_KEYS, "route": ROUTES, "stream": (False, True)}
_CASE_KEYS = {"id", "title", "features", "hosting", "route", "stream", "request", "expect", "kong",
              "plugin", "config", "service", "upstream", "script", "matrix", "for"}
_EXPECT_KEYS = {f.name for f in fields(Expectation)}
_REQUEST_KEYS = {f.name for f in fields(ClientRequest)}


class CatalogueError(ValueError):
    pass


def merge(base: Any, over: Any) -> Any:
    """``over`` deep-merged onto a copy of ``base``; a ``None`` in ``over`` deletes the key."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return copy.deepcopy(over)
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(merged.get(key), value)
    return merged


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(value: Any, names: Mapping[str, str]) -> Any:
    """``{hosting}``-style placeholders of the matrix filled in; any other text kept as is."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: names.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    return value


def _expectation(raw: Mapping[str, Any], where: str) -> Expectation:
    unknown = set(raw) - _EXPECT_KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown expectation field(s) {sorted(unknown)}")
    return Expectation(**raw)


def _expand(entry: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One concrete case per combination of the entry's matrix values."""
    matrix = entry.get("matrix") or {}
    axes = {name: list(_MATRIX[name]) if values == "all" else list(values)
            for name, values in matrix.items()}
    for combo in itertools.product(*axes.values()) if axes else [()]:
        chosen = dict(zip(axes, combo, strict=True))
        case = {k: v for k, v in entry.items() if k not in ("matrix", "for")}
        case.update({k: v for k, v in chosen.items() if k in _MATRIX})  # other axes only vary
        for name, value in chosen.items():  # per-value overrides
            override = (entry.get("for") or {}).get(name, {}).get(value)
            if override:
                case = merge(case, override)
        names = {name: str(value).lower() for name, value in chosen.items()}
        names.update(hosting=case.get("hosting", ""), route=case.get("route", ""),
                     mode="stream" if case.get("stream") else "json")
        yield _fill(case, names)


def _build(raw: dict[str, Any], source: str) -> Case:
    where = f"{source}: case {raw.get('id', '?')}"
    unknown = set(raw) - _CASE_KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {sorted(unknown)}")
    for required in ("id", "title", "features", "hosting", "route", "expect"):
        if required not in raw:
            raise CatalogueError(f"{where}: missing {required!r}")
    if raw["hosting"] not in HOSTING_KEYS or raw["route"] not in ROUTES:
        raise CatalogueError(f"{where}: hosting must be one of {HOSTING_KEYS}, route {ROUTES}")
    request = dict(raw.get("request") or {})
    if set(request) - _REQUEST_KEYS:
        unknown = set(request) - _REQUEST_KEYS
        raise CatalogueError(f"{where}: unknown request field(s) {sorted(unknown)}")
    if "body" not in request and "raw_body" not in request:
        request["body"] = copy.deepcopy(SEED[raw["route"]])
    if raw.get("stream") and isinstance(request.get("body"), dict):
        request["body"] = {**request["body"], "stream": True}
    kong = dict(raw.get("kong") or {})
    deviation = kong.pop("deviation", "")
    has_kong = "kong" in raw
    expect = dict(raw["expect"])
    return Case(
        id=raw["id"], title=raw["title"], features=tuple(raw["features"]),
        hosting=raw["hosting"], route=raw["route"], request=ClientRequest(**request),
        expect=_expectation(expect, where),
        kong=_expectation(merge(expect, kong), where) if has_kong else None,
        deviation=deviation, plugin=raw.get("plugin", "ai-proxy"),
        config=raw.get("config") or {}, service=raw.get("service") or {},
        upstream=raw.get("upstream", "mock"), script=raw.get("script"), source=source,
    )  # fmt: skip


def load_catalogue() -> list[Case]:
    """Every case of every file in ``harness/cases``, in file then entry order; ids are unique."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    folder = resources.files("proxyproof.harness") / "cases"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            document = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise CatalogueError(f"{entry.name}: not valid YAML: {error}") from None
        for raw in document.get("cases") or []:
            for concrete in _expand(raw):
                case = _build(concrete, entry.name)
                if case.id in seen:
                    raise CatalogueError(f"{entry.name}: duplicate case id {case.id!r} "
                                         f"(also in {seen[case.id]})")
                seen[case.id] = entry.name
                cases.append(case)
    return cases
