"""The seed scenario conforms for every hosting, in both behaviours."""

import pytest

from proxyproof.gateways import bundled_gateway
from proxyproof.harness.hostings import HOSTINGS
from proxyproof.harness.seed import run_hosting


@pytest.mark.parametrize("kong_compat", [False, True], ids=["fixed", "kong-compat"])
@pytest.mark.parametrize("hosting", HOSTINGS, ids=[h.mock for h in HOSTINGS])
def test_seed_requests_conform(hosting, kong_compat):
    results = list(run_hosting(hosting, bundled_gateway(kong_compat), kong_compat=kong_compat))
    assert [r.route_type for r in results] == ["llm/v1/chat", "llm/v1/completions"]
    for result in results:
        assert result.deviations == [], result
        if kong_compat and hosting.mock == "huggingface":
            # Kong reads only {"data": [...]}; the Inference API answers an array.
            assert result.client.startswith("500 ")
            assert "cannot parse response from llama2 endpoint" in result.notes[0]
        else:
            assert result.client.startswith("200 ")
