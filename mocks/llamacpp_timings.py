"""llama.cpp's ``timings`` object, shared by its native and its OpenAI-compatible replies."""

from __future__ import annotations


def timings(prompt_tokens: int, predicted_tokens: int) -> dict[str, float]:
    """Deterministic stand-ins for the measured ``timings`` (floating milliseconds): the eight
    fields ``result_timings`` always writes at c392e509 (``cache_n`` came later; ``draft_n`` and
    ``draft_n_accepted`` only with a draft model)."""
    prompt_ms = 0.5 + 0.75 * prompt_tokens
    predicted_ms = 12.5 * predicted_tokens
    return {
        "prompt_n": prompt_tokens,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / prompt_tokens if prompt_tokens else 0.0,
        "prompt_per_second": 1000.0 * prompt_tokens / prompt_ms,
        "predicted_n": predicted_tokens,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": 12.5 if predicted_tokens else 0.0,
        "predicted_per_second": 80.0 if predicted_tokens else 0.0,
    }
