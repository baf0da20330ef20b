"""Semantic routing: the prompt text, the distances and the ranking as pure functions, and over
HTTP with the mocks' embeddings (a hashed bag of words, so texts sharing words are near):
the nearest description wins, ``CATCHALL`` takes the rest (docs/balancer.md#semantic-routing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from balancer_support import advanced_config, balanced_proxy, target

from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.proxy_impl import errors
from proxyproof.proxy_impl.balancer import embeddings, semantic
from proxyproof.proxy_impl.model import CATCHALL, ModelOptions, Target

MATHS = "arithmetic, algebra and numbers: sums, products and equations"
POETRY = "poems, rhymes and verses: poetry and creative writing"


def chat(text: str) -> dict:
    return {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": text}]}  # fmt: skip


# --- pure parts ----------------------------------------------------------------------------------


def test_the_prompt_is_the_last_user_message_or_the_completion_prompt():
    body = {"messages": [{"role": "user", "content": "first"},
                         {"role": "assistant", "content": "answer"},
                         {"role": "user", "content": [{"type": "text", "text": "second"},
                                                      {"type": "image_url", "image_url": {}},
                                                      {"type": "text", "text": "part"}]}]}
    assert semantic.prompt_text(body, "llm/v1/chat") == "second\npart"
    assert semantic.prompt_text({"prompt": "complete me"}, "llm/v1/completions") == "complete me"
    assert semantic.prompt_text({"messages": [{"role": "system", "content": "x"}]},
                                "llm/v1/chat") is None  # fmt: skip
    assert semantic.prompt_text({"prompt": "  "}, "llm/v1/completions") is None


def test_distances():
    assert semantic.distance([1, 0], [1, 0], "cosine") == pytest.approx(0)
    assert semantic.distance([1, 0], [0, 2], "cosine") == pytest.approx(1)
    assert semantic.distance([1, 0], [-1, 0], "cosine") == pytest.approx(2)
    assert semantic.distance([0, 0], [3, 4], "euclidean") == pytest.approx(5)
    with pytest.raises(ValueError):
        semantic.distance([1, 0], [1, 0, 0], "cosine")


def described(description: str | None, weight: int = 100) -> Target:
    options = ModelOptions("ollama", "http://x/api/chat")
    return Target("llm/v1/chat", "m", options, weight=weight, description=description)


TARGETS = [described("maths", 10), described("poetry"), described("maths", 90),
           described(CATCHALL, 5), described(None), described(CATCHALL, 50)]
VECTORS = {"maths": [1.0, 0.0], "poetry": [0.0, 1.0]}


def test_the_nearest_description_then_the_catchalls_each_by_weight():
    ranked, nearest = semantic.rank([0.9, 0.1], VECTORS, TARGETS, metric="cosine", threshold=0.3)
    assert ranked == (2, 0, 5, 3)
    assert nearest == pytest.approx(semantic.distance([0.9, 0.1], [1, 0], "cosine"))


def test_nothing_within_the_threshold_leaves_the_catchalls():
    ranked, _ = semantic.rank([0.7, 0.7], VECTORS, TARGETS, metric="cosine", threshold=0.1)
    assert ranked == (5, 3)
    none, _ = semantic.rank([0.7, 0.7], VECTORS, TARGETS[:3], metric="cosine", threshold=0.1)
    assert none == ()


def test_descriptions_to_embed_are_distinct_and_exclude_catchall():
    assert semantic.descriptions(TARGETS) == ["maths", "poetry"]


def test_both_embeddings_reply_shapes_are_read():
    openai = {"data": [{"index": 1, "embedding": [0.5, 0.5]}, {"index": 0, "embedding": [1, 0]}]}
    assert embeddings.vectors_from(openai, 2) == [[1.0, 0.0], [0.5, 0.5]]
    assert embeddings.vectors_from({"embeddings": [[0.25, 1]]}, 1) == [[0.25, 1.0]]
    for bad in ({"data": []}, {"embeddings": [["x"]]}, [], {"embeddings": [[float("nan")]]}):
        with pytest.raises(embeddings.EmbeddingsError):
            embeddings.vectors_from(bad, 1)


# --- over HTTP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mocks() -> Iterator[dict[str, RunningMock]]:
    with (
        run_mock("ollama", models=["llama2", "maths-llama", "poet-llama"]) as ollama,
        run_mock("openai", models=["text-embedding-3-small"]) as embedder,
    ):
        yield {"ollama": ollama, "embedder": embedder}


@pytest.fixture(autouse=True)
def clean(mocks):
    for mock in mocks.values():
        mock.control.reset()


def semantic_config(mocks, embed_url: str, *, catchall: bool = True, threshold: float = 0.8,
                    **balancer) -> dict:  # fmt: skip
    url = mocks["ollama"].url
    targets = [target(url, name="maths-llama", description=MATHS),
               target(url, name="poet-llama", description=POETRY)]
    if catchall:
        targets.append(target(url, name="llama2", description=CATCHALL))
    config = advanced_config(targets, algorithm="semantic", **balancer)
    plugin = config["services"][0]["routes"][0]["plugins"][0]["config"]
    plugin["embeddings"] = {"model": {"provider": "openai", "name": embed_url[1],
                                      "options": {"upstream_url": embed_url[0]}}}
    plugin["vectordb"] = {"strategy": "redis", "dimensions": 256, "threshold": threshold,
                          "distance_metric": "cosine"}  # fmt: skip
    return config


def openai_embeddings(mocks) -> tuple[str, str]:
    return mocks["embedder"].url + "/v1/embeddings", "text-embedding-3-small"


def ollama_embeddings(mocks) -> tuple[str, str]:
    return mocks["ollama"].url + "/api/embed", "llama2"


@pytest.mark.parametrize("embedder", [openai_embeddings, ollama_embeddings],
                         ids=["openai-v1-embeddings", "ollama-api-embed"])
def test_the_prompt_goes_to_the_nearest_description(mocks, embedder):
    config = semantic_config(mocks, embedder(mocks))
    with balanced_proxy(config) as proxy:
        maths = proxy.chat(chat("What is the sum of these numbers: 3 and 4?"))
        poem = proxy.chat(chat("Write a poem with rhymes about llamas"))
        other = proxy.chat(chat("Which train goes to Zurich tomorrow?"))
        again = proxy.chat(chat("Solve the equations, please"))
    assert [a.status_code for a in (maths, poem, other, again)] == [200] * 4
    assert maths.headers["X-Kong-LLM-Model"] == "llama2/maths-llama"
    assert poem.headers["X-Kong-LLM-Model"] == "llama2/poet-llama"
    assert other.headers["X-Kong-LLM-Model"] == "llama2/llama2"  # the CATCHALL
    assert again.headers["X-Kong-LLM-Model"] == "llama2/maths-llama"


def test_descriptions_are_embedded_once_and_each_prompt_once(mocks):
    config = semantic_config(mocks, openai_embeddings(mocks))
    with balanced_proxy(config) as proxy:
        for text in ("sum of numbers", "a poem", "trains"):
            assert proxy.chat(chat(text)).status_code == 200
    calls = mocks["embedder"].control.journal()
    assert [call["body"]["input"] for call in calls] == [
        [MATHS, POETRY], ["sum of numbers"], ["a poem"], ["trains"]]
    assert {call["body"]["dimensions"] for call in calls} == {256}
    assert {call["body"]["model"] for call in calls} == {"text-embedding-3-small"}


def test_without_a_catchall_an_unmatched_prompt_is_refused(mocks):
    config = semantic_config(mocks, openai_embeddings(mocks), catchall=False)
    with balanced_proxy(config) as proxy:
        answer = proxy.chat(chat("Which train goes to Zurich tomorrow?"))
    assert answer.status_code == 400
    assert answer.json() == {"error": {"message": errors.NO_SEMANTIC_MATCH}}
    assert [c["path"] for c in mocks["ollama"].control.journal()] == []


def test_a_failing_embeddings_api_is_a_502_that_names_nothing_internal(mocks):
    mocks["embedder"].control.fault("status", status=500, json={"error": "down"})
    config = semantic_config(mocks, openai_embeddings(mocks))
    with balanced_proxy(config) as proxy:
        answer = proxy.chat(chat("sum of numbers"))
        mocks["embedder"].control.clear_scripts()
        recovered = proxy.chat(chat("sum of numbers"))
    assert answer.status_code == 502
    assert answer.json()["message"] == errors.EMBEDDINGS_FAILED
    assert mocks["embedder"].url not in answer.text
    assert recovered.headers["X-Kong-LLM-Model"] == "llama2/maths-llama"


def test_a_failing_match_falls_back_to_the_catchall(mocks):
    mocks["ollama"].control.fault("status", status=503, json={"error": "busy"}, times=1,
                                  match={"body_contains": "maths-llama"})  # fmt: skip
    config = semantic_config(mocks, openai_embeddings(mocks),
                             failover_criteria=["http_503", "non_idempotent"])  # fmt: skip
    with balanced_proxy(config) as proxy:
        answer = proxy.chat(chat("sum of numbers"))
    assert answer.status_code == 200
    assert answer.headers["X-Kong-LLM-Model"] == "llama2/llama2"
    assert [c["body"]["model"] for c in mocks["ollama"].control.journal()] == [
        "maths-llama", "llama2"]  # never the poet: it does not match
