"""The OpenAI stub's ``flaky`` mode, which bench/soak.py relies on."""

import httpx
import pytest

from testkit.openai_stub import MALFORMED_CONTENT, OpenAIStub


def _outcomes(stub: OpenAIStub, calls: int) -> list[str]:
    outcomes = []
    for _ in range(calls):
        response = httpx.post(f"{stub.base_url}/chat/completions", json={"model": "m"})
        if response.status_code != 200:
            outcomes.append(str(response.status_code))
            continue
        content = response.json()["choices"][0]["message"]["content"]
        outcomes.append("malformed" if content == MALFORMED_CONTENT else "good")
    return outcomes


def test_flaky_fails_the_given_share_alternating_500_and_malformed() -> None:
    with OpenAIStub(mode="flaky", failure_rate=0.2) as stub:
        outcomes = _outcomes(stub, 20)
    assert outcomes.count("good") == 16
    assert [o for o in outcomes if o != "good"] == ["500", "malformed", "500", "malformed"]


def test_flaky_rate_is_configurable_at_runtime() -> None:
    with OpenAIStub(mode="good") as stub:
        answer = httpx.post(f"{stub.url}/_stub/mode", json={"mode": "flaky", "failure_rate": 0.5})
        assert answer.json()["failure_rate"] == 0.5
        assert _outcomes(stub, 4).count("good") == 2
        refused = httpx.post(f"{stub.url}/_stub/mode", json={"failure_rate": 2})
        assert refused.status_code == 400


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_flaky_extremes(rate: float) -> None:
    with OpenAIStub(mode="flaky", failure_rate=rate) as stub:
        outcomes = _outcomes(stub, 6)
    assert outcomes.count("good") == (6 if rate == 0 else 0)
