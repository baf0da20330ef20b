"""Oracle-side decoders: an upstream request read back into the client's conversation and options,
and ``expected_loss``, exactly what each format cannot carry.

Written from the Llama 2 chat template (``docs/kong-behaviour.md``, ``docs/prompt-injection.md``)
and the upstream formats in ``fixtures/oas.yaml``; independent of any gateway's code. The round-trip
property is ``decode_upstream(body) == expected_loss(client request)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .oracle import CHAT, TUNING, neutralise_control_tokens

SYSTEM_PROMPT = "You are a helpful assistant."  # the raw completions template's fixed system turn


class DecodeError(ValueError):
    """The upstream request is not in the shape its format's template produces."""


@dataclass(frozen=True)
class Decoded:
    """What an upstream request says: the turns (role, content) — a completions prompt is one
    ``user`` turn, after the template's system turn for raw — the tuning options (client names,
    nulls left out), the stream flag and the model (None where the format carries none)."""

    turns: tuple[tuple[str, str], ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    stream: bool = False
    model: str | None = None

    def differences(self, other: Decoded) -> list[str]:
        """Readable lines saying how ``other`` (what was decoded) differs from ``self``."""
        lines = []
        if self.turns != other.turns:
            lines.append(f"turns differ ({len(self.turns)} expected, {len(other.turns)} "
                         "decoded)")
            for index in range(max(len(self.turns), len(other.turns))):
                want = self.turns[index] if index < len(self.turns) else None
                got = other.turns[index] if index < len(other.turns) else None
                if want != got:
                    lines.append(f"  turn {index}: expected {want!r}, decoded {got!r}")
        if dict(self.options) != dict(other.options):
            lines.append(f"options: expected {dict(self.options)!r}, "
                         f"decoded {dict(other.options)!r}")
        if self.stream != other.stream:
            lines.append(f"stream: expected {self.stream}, decoded {other.stream}")
        if self.model != other.model:
            lines.append(f"model: expected {self.model!r}, decoded {other.model!r}")
        return lines


# ------------------------------------------------------------------ the Llama 2 prompt, read back


class _Reader:
    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def starts(self, literal: str) -> bool:
        return self.text.startswith(literal, self.at)

    def expect(self, literal: str) -> None:
        if not self.starts(literal):
            raise DecodeError(f"expected {literal!r} at {self.at}: "
                              f"{self.text[self.at:self.at + 40]!r}")
        self.at += len(literal)

    def until(self, literal: str) -> str:
        end = self.text.find(literal, self.at)
        if end < 0:
            raise DecodeError(f"no {literal!r} after {self.at}: {self.text[self.at:][:40]!r}")
        content, self.at = self.text[self.at:end], end + len(literal)
        return content

    @property
    def done(self) -> bool:
        return self.at >= len(self.text)


def decode_llama2_chat(prompt: str) -> list[tuple[str, str]]:
    """The turns of a fixed-mode Llama 2 chat prompt::

        <s>[INST] <<SYS>> S <</SYS>> U [/INST] A </s> A2 </s> <s>[INST] U2 [/INST]

    Each block opens with ``<s>[INST]``; an optional system header; a question (`` U [/INST]``,
    possibly empty: two spaces) or none (`` [/INST]``); then any number of answers `` A </s>``.
    Contents are neutralised, so none holds a control token and the split is unambiguous."""
    read, turns = _Reader(prompt), []
    first = True
    while not read.done:
        if not first:
            read.expect(" ")
        first = False
        read.expect("<s>[INST]")
        if read.starts(" <<SYS>> "):
            read.expect(" <<SYS>> ")
            turns.append(("system", read.until(" <</SYS>>")))
        if read.starts(" [/INST]"):
            read.expect(" [/INST]")
        else:
            read.expect(" ")
            turns.append(("user", read.until(" [/INST]")))
        while not read.done and not read.starts(" <s>[INST]"):
            read.expect(" ")
            turns.append(("assistant", read.until(" </s>")))
    return turns


def decode_llama2_completion(prompt: str) -> list[tuple[str, str]]:
    """``<s> [INST] <<SYS>> S <</SYS>> P [/INST]`` as a system and a user turn."""
    read = _Reader(prompt)
    read.expect("<s> [INST] <<SYS>> ")
    system = read.until(" <</SYS>> ")
    if not prompt.endswith(" [/INST]") or len(prompt) - len(" [/INST]") < read.at:
        raise DecodeError(f"the prompt does not end with ' [/INST]': {prompt[-40:]!r}")
    return [("system", system), ("user", prompt[read.at:len(prompt) - len(" [/INST]")])]


# ------------------------------------------------------------------ upstream bodies


def _options(values: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    return {client: values[wire] for wire, client in names.items()
            if isinstance(values, Mapping) and values.get(wire) is not None}


def decode_upstream(llama2_format: str, route_type: str, body: Any) -> Decoded:
    """Read an upstream request body back into the client's terms (``DecodeError`` if it is not
    the shape the format's template produces)."""
    if not isinstance(body, dict):
        raise DecodeError(f"the upstream body is not a JSON object: {body!r:.80}")
    chat = route_type == CHAT
    try:
        if llama2_format == "raw":
            parameters = body.get("parameters") or {}
            turns = (decode_llama2_chat(body["inputs"]) if chat
                     else decode_llama2_completion(body["inputs"]))
            names = {"max_new_tokens": "max_tokens", "temperature": "temperature",
                     "top_p": "top_p", "top_k": "top_k"}
            return Decoded(tuple(turns), _options(parameters, names),
                           parameters.get("stream") is True)
        if llama2_format == "ollama":
            turns = ([(m["role"], m["content"]) for m in body["messages"]] if chat
                     else [("user", body["prompt"])])
            names = {"num_predict": "max_tokens", "temperature": "temperature",
                     "top_p": "top_p", "top_k": "top_k"}
            return Decoded(tuple(turns), _options(body.get("options") or {}, names),
                           body.get("stream") is True, body.get("model"))
        turns = ([(m["role"], m["content"]) for m in body["messages"]] if chat
                 else [("user", body["prompt"])])
        names = {name: name for name in TUNING}
        return Decoded(tuple(turns), _options(body, names), body.get("stream") is True,
                       body.get("model"))
    except (KeyError, TypeError) as error:
        raise DecodeError(f"{llama2_format} body lacks {error}") from None


# ------------------------------------------------------------------ what each format loses


RAW_ROLE_LOSS = (
    "raw chat: the Llama 2 template has places for one leading system prompt, questions and "
    "answers only: a leading system turn stays system, assistant turns and any later system turn "
    "become answers (assistant), every other role (user, tool, developer, function) a question "
    "(user); control tokens in contents are neutralised with U+200B after their first character"
)
RAW_COMPLETION_LOSS = ("raw completions: the prompt (neutralised) becomes the user turn after the "
                       "template's fixed system prompt 'You are a helpful assistant.'")
MODEL_LOSS = "raw: the model name is not carried (the upstream URL names the model)"
TOP_K_LOSS = "openai: top_k is not an OpenAI parameter and is dropped"


def expected_loss(llama2_format: str, route_type: str, request: Mapping[str, Any],
                  stream: bool, configured_model: str | None = None
                  ) -> tuple[Decoded, list[str]]:
    """What decoding the upstream request must give back for client ``request`` on a route
    without configured tuning, and the losses that apply (the module's ``*_LOSS`` texts).

    Options: every non-null client option (``max_tokens``, ``temperature``, ``top_p``,
    ``top_k``) is carried, except ``top_k`` by the openai format. The model is the configured
    one (else the client's), except for raw, which carries none."""
    chat = route_type == CHAT
    losses: list[str] = []
    options = {name: request[name] for name in TUNING if request.get(name) is not None}
    model = configured_model or request.get("model")
    if llama2_format == "raw":
        losses.append(MODEL_LOSS)
        if chat:
            turns = []
            for position, message in enumerate(request["messages"]):
                role = message["role"]
                if position == 0 and role == "system":
                    kept = "system"
                elif role in ("assistant", "system"):
                    kept = "assistant"
                else:
                    kept = "user"
                turns.append((kept, neutralise_control_tokens(message["content"])))
            losses.append(RAW_ROLE_LOSS)
        else:
            turns = [("system", SYSTEM_PROMPT),
                     ("user", neutralise_control_tokens(request["prompt"]))]
            losses.append(RAW_COMPLETION_LOSS)
        return Decoded(tuple(turns), options, stream, None), losses
    turns = ([(m["role"], m["content"]) for m in request["messages"]] if chat
             else [("user", request["prompt"])])
    if llama2_format == "openai" and "top_k" in options:
        del options["top_k"]
        losses.append(TOP_K_LOSS)
    return Decoded(tuple(turns), options, stream, model), losses


__all__ = [
    "DecodeError", "Decoded", "MODEL_LOSS", "RAW_COMPLETION_LOSS", "RAW_ROLE_LOSS",
    "SYSTEM_PROMPT", "TOP_K_LOSS", "decode_llama2_chat", "decode_llama2_completion",
    "decode_upstream", "expected_loss",
]
