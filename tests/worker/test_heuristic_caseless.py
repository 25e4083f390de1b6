"""The heuristic's fast path for ASCII text (lower-cased once, patterns without
``re.I``) finds exactly what the ``re.I`` patterns find on the text as written."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.worker.assessors import heuristic
from services.worker.assessors.base import AssessmentRequest
from services.worker.assessors.playbook import PLAYBOOK
from tests.worker.test_heuristic import OOM_PAST, UNRELATED_PAST, request, tried


@contextmanager
def any_case_only() -> Iterator[None]:
    """Every search on the text as written, with the ``re.I`` patterns."""
    fast = heuristic._subject
    heuristic._subject = lambda text: (text, False)
    try:
        yield
    finally:
        heuristic._subject = fast


def findings(text: str) -> tuple[object, ...]:
    return (
        [(m.signature.name, m.hits) for m in heuristic.match_signatures(text)],
        heuristic.error_signals(text),
        heuristic.richest_error_line(text),
        sorted(heuristic._signal_hits(text)),
    )


#: Words the patterns look for (a piece of each playbook pattern and signal
#: phrase), so generated texts hit them, in any case, next to anything.
_WORDS = sorted(
    {word for signature in PLAYBOOK for rx in signature.patterns for word in rx.split("\\")}
    | {"OOMKilled", "HTTP/1.1 503", "status code: 404", "exit code 137", "Exited with 1"}
    | {"429 Too Many Requests", "ECONNREFUSED", "x509", "NXDOMAIN", "ValueError", "\n"}
)
_pieces = st.one_of(
    st.sampled_from(_WORDS).flatmap(
        lambda word: st.sampled_from([word, word.upper(), word.title(), word.swapcase()])
    ),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=12),
)
ascii_texts = st.lists(_pieces, max_size=30).map("".join)


@hypothesis_settings(max_examples=400, deadline=None)
@given(ascii_texts)
def test_ascii_text_gives_the_same_findings(text: str) -> None:
    fast = findings(text)
    with any_case_only():
        assert findings(text) == fast


@pytest.mark.parametrize(
    "req",
    [
        request(),
        request(past=[OOM_PAST, UNRELATED_PAST], tried_steps=tried("Restarted the pods")),
        request(notes="TLS: certificate verify failed; x509: certificate has expired"),
        request(notes="DNS lookup: NXDOMAIN, then Connection Refused; HTTP/1.1 503, exit code 1"),
        request(notes="Pods keep dying — OOMKilled (exit code 137) après le déploiement"),
        request(notes="Ｋubernetes ſecret EXPIRED TOKEN İstanbul"),  # not ASCII: any-case path
    ],
)
def test_assessments_are_the_same(req: AssessmentRequest) -> None:
    fast = asdict(heuristic.HeuristicAssessor().assess(req))
    with any_case_only():
        assert asdict(heuristic.HeuristicAssessor().assess(req)) == fast


def test_a_pattern_with_an_upper_case_letter_is_refused() -> None:
    with pytest.raises(ValueError, match="lower case"):
        heuristic._Caseless.compile(r"\bOOM\b")
    assert heuristic._Caseless.compile(r"\S+\b").lowered.pattern == r"\S+\b"
