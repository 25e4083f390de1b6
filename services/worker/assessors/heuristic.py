"""The ``heuristic`` assessor: an offline, deterministic first read of an escalation.

Method
------
1. **Key words.** Text is lower-cased, split on anything that is not a letter or
   digit, stripped of stopwords, lightly stemmed (``restarted``, ``restarting``,
   ``restarts`` → ``restart``; ``pods`` → ``pod``) and a few synonyms are folded
   (raise/bump → increase, reboot/bounce → restart, revert/"rolled back" →
   rollback, k8s → kubernetes, …). Every comparison below works on these words.
2. **Error signals.** Exception names, HTTP 4xx/5xx codes, exit codes and
   well-known failure phrases (``OOMKilled``, ``connection refused``, ``NXDOMAIN``
   …) are pulled from the problem summary, the engineer's notes, the outcomes of
   tried steps and the transcript, in order of first appearance, together with
   the transcript or outcome line that carries the most of them.
3. **Playbook.** :data:`PLAYBOOK` is a tuple of :class:`Signature` records: a few
   loose regular expressions, one likely cause and a few next steps. Signatures
   are matched on all of that text plus the domain and ranked by how many of
   their patterns hit. A per-domain :class:`Fallback` (or a generic one) always
   adds a cause and steps, so there is something sensible without a match.
4. **Past fixes.** Each resolved handoff of the org is scored against this one:
   cosine similarity of binary key-word vectors over summary + notes + domain
   (playbook signatures matched on each side count as shared words), plus
   :data:`DOMAIN_BONUS` for the same domain. Those scoring at least
   :data:`SIMILARITY_THRESHOLD` — at most :data:`MAX_PAST_FIXES`, best first —
   lead the suggested steps; a strong best match also leads the likely causes.
5. **Selection.** Steps are taken in the order past fixes → playbook steps
   (round-robin over the matched signatures, strongest first) → fallback. A step
   is dropped when at least :data:`TRIED_COVERAGE` of its key words appear in
   one tried step's description (so "Restarted the pods" suppresses "Restart the
   pods"), or at least :data:`DUPLICATE_COVERAGE` of them in a step already
   chosen. Playbook steps are compared by their short ``action`` only, so detail
   text does not hide that a step was tried.

The result depends on the request alone: no randomness, clock, network or set
iteration order (so ``PYTHONHASHSEED`` does not matter either). What is cached
(compiled patterns, the key words of playbook steps, a past resolution's
profile) is a pure function of its text, so a cache hit gives the same answer. To bound the
run time, only the last :data:`MAX_MESSAGES` transcript messages are read, and
a text longer than its budget (:data:`MAX_TEXT_CHARS` per field or message,
:data:`MAX_DETAIL_CHARS` for outcomes plus transcript, :data:`PAST_TEXT_CHARS`
per past field) keeps only its head and tail — tracebacks end with the exception.
"""

import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from services.worker.assessors.base import AssessmentRequest, AssessmentResult, PastResolution
from services.worker.assessors.playbook import (
    FALLBACKS,
    GENERIC_FALLBACK,
    LAST_RESORT,
    PLAYBOOK,
    Fallback,
    Signature,
    Step,
)
from shared.handoffs.models import ConfidenceTier

MAX_CAUSES = 5
MAX_STEPS = 6
MAX_PAST_FIXES = 3
MAX_SIGNATURES = 4
MAX_SIGNALS = 6
MAX_SUMMARY_CHARS = 700
MAX_MESSAGES = 50
MAX_TEXT_CHARS = 4_000
MAX_DETAIL_CHARS = 40_000
PAST_TEXT_CHARS = 1_000

SIMILARITY_THRESHOLD = 0.35
STRONG_SIMILARITY = 0.55
DOMAIN_BONUS = 0.1
TRIED_COVERAGE = 0.6
DUPLICATE_COVERAGE = 0.8
#: Past resolutions whose profiles are kept: the same org's memory is read by
#: every assessment, and it changes by one handoff per resolution.
PAST_PROFILE_CACHE = 4096


# --------------------------------------------------------------------------- key words

_WORD = re.compile(r"[a-z0-9]+")
_PHRASES = (
    (re.compile(r"\brol(?:l|led|ling)\s+back\b"), "rollback"),
    (re.compile(r"\bback[\s-]?off\b"), "backoff"),
)
_STOPWORD_TEXT = """
    a about after again all also am an and any are as at be been before being but by can
    could did didn do does doesn don done during each even for from get got had has have
    having he her here him his how i if in into is isn it its just me more most my no nor
    not now of off on once only or other our out over own same she should so some still
    such than that the their them then there these they this those through to too try
    tried trying under until up very was wasn we were what when where which while who why
    will with won would you your attempt attempted issue problem please help need seem
    seems see saw today yesterday keep keeps kept anymore
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SUFFIXES = (
    ("ies", "y"),
    ("ied", "y"),
    ("sses", "ss"),
    ("ations", "ate"),
    ("ation", "ate"),
    ("ments", ""),
    ("ment", ""),
    ("ions", ""),
    ("ion", ""),
    ("ings", ""),
    ("ing", ""),
    ("ed", ""),
    ("es", "e"),
    ("s", ""),
)
_SYNONYMS = {
    "rais": "increas",
    "bump": "increas",
    "bigger": "increas",
    "reboot": "restart",
    "bounc": "restart",
    "recycl": "restart",
    "redeploy": "deploy",
    "revert": "rollback",
    "undo": "rollback",
    "verify": "check",
    "inspect": "check",
    "examin": "check",
    "review": "check",
    "look": "check",
    "read": "check",
    "count": "check",
    "nslookup": "resolv",
    "dig": "resolv",
    "pgbouncer": "pooler",
    "remov": "delet",
    "db": "databas",
    "k8s": "kubernet",
    "cert": "certificat",
    "cred": "credential",
    "config": "configur",
    "configurat": "configur",
    "mem": "memory",
}


def _stem(word: str) -> str:
    """Strip one common inflection, a final ``e`` and a doubled final consonant, so
    that restart/restarted/restarting/restarts and stop/stopped agree."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix != "s" or not word.endswith(("ss", "us", "is")):
                word = word[: -len(suffix)] + replacement
            break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
        word = word[:-1]
    return word


def key_words(text: str) -> frozenset[str]:
    """The normalised, stemmed, synonym-folded content words of ``text``."""
    words = set()
    text = text.lower()
    for phrase, word in _PHRASES:
        text = phrase.sub(word, text)
    for raw in _WORD.findall(text):
        if len(raw) < 2 or raw in _STOPWORDS:
            continue
        stem = _stem(raw)
        words.add(_SYNONYMS.get(stem, stem))
    return frozenset(words)


def _coverage(words: frozenset[str], by: frozenset[str]) -> float:
    """The share of ``words`` that also appear in ``by`` (``words`` non-empty)."""
    return len(words & by) / len(words)


# ------------------------------------------------------------------- case-insensitive search


@dataclass(frozen=True)
class _Caseless:
    """A case-insensitive pattern, compiled twice: with ``re.I`` for any text, and
    without it for an ASCII text already lower-cased (:func:`_subject`). Both find
    the same matches at the same offsets there (``str.lower`` keeps an ASCII text's
    length, and the pattern has no upper-case letter of its own), but ``re.I``
    stops ``re`` from skipping ahead to a literal prefix: the playbook's 111
    searches took ~3x as long with it."""

    any_case: re.Pattern[str]
    lowered: re.Pattern[str]

    @classmethod
    def compile(cls, pattern: str) -> "_Caseless":
        if re.search("[A-Z]", re.sub(r"\\.", "", pattern)):  # escapes (\S, \B) keep their case
            raise ValueError(f"write case-insensitive patterns in lower case: {pattern!r}")
        return cls(re.compile(pattern, re.I), re.compile(pattern))

    def of(self, lowered: bool) -> re.Pattern[str]:
        """The form for a subject from :func:`_subject` (``lowered``: its second item)."""
        return self.lowered if lowered else self.any_case


def _subject(text: str) -> tuple[str, bool]:
    """What :class:`_Caseless` patterns search: ``text`` lower-cased when it is
    ASCII (and so whether it was), else ``text`` as it is."""
    return (text.lower(), True) if text.isascii() else (text, False)


# --------------------------------------------------------------------------- error signals

_SIGNAL_PHRASES: tuple[tuple[str, str], ...] = (
    ("OOMKilled", r"\boom[ -]?kill(?:ed)?\b"),
    ("out of memory", r"\bout of ?memory"),
    ("CrashLoopBackOff", r"crashloopbackoff"),
    ("ImagePullBackOff", r"imagepullbackoff"),
    ("ErrImagePull", r"errimagepull"),
    ("Evicted", r"\bevicted\b"),
    ("connection refused", r"connection refused|econnrefused"),
    ("connection reset", r"connection reset|econnreset"),
    ("timed out", r"\btimed out\b|etimedout|deadline exceeded"),
    ("permission denied", r"permission denied|\beacces\b"),
    ("access denied", r"access ?denied"),
    ("no space left on device", r"no space left on device|\benospc\b"),
    ("NXDOMAIN", r"nxdomain"),
    ("SERVFAIL", r"servfail"),
    ("name resolution failure", r"failure in name resolution|name or service not known"),
    ("too many connections", r"too many (?:connections|clients)|remaining connection slots"),
    ("deadlock detected", r"deadlock detected"),
    ("certificate verify failed", r"certificate verify failed"),
    ("certificate expired", r"certificate (?:has )?expired|expired certificate"),
    ("x509", r"\bx509\b"),
    ("token expired", r"token (?:has )?expired|expired token"),
)
_PHRASE_PATTERNS = tuple((label, _Caseless.compile(rx)) for label, rx in _SIGNAL_PHRASES)
_EXCEPTION = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)*([A-Z][A-Za-z0-9]*(?:Error|Exception))\b")
_HTTP_BEFORE = _Caseless.compile(
    r"\b(?:http(?:/[\d.]+)?|status(?:[ _]code)?|response|returned|returns|returning|got)"
    r"\s*[:=]?\s*([45]\d\d)\b"
)
_HTTP_AFTER = _Caseless.compile(
    r"\b([45]\d\d)\s+(?:error|unauthori[sz]ed|forbidden|not found|too many requests|"
    r"internal server error|bad gateway|service unavailable|gateway time-?out)"
)
_EXIT = _Caseless.compile(r"\bexit(?:ed)?(?:\s+with)?(?:\s+(?:code|status))?\s*[:=]?\s*(\d{1,3})\b")


def _signal_hits(text: str) -> list[tuple[int, str]]:
    subject, lowered = _subject(text)  # the same offsets as in ``text``
    hits = [
        (m.start(), label)
        for label, rx in _PHRASE_PATTERNS
        for m in rx.of(lowered).finditer(subject)
    ]
    hits += [(m.start(), m.group(1)) for m in _EXCEPTION.finditer(text)]  # case-sensitive
    for rx in (_HTTP_BEFORE, _HTTP_AFTER):
        hits += [(m.start(), f"HTTP {m.group(1)}") for m in rx.of(lowered).finditer(subject)]
    hits += [(m.start(), f"exit code {m.group(1)}") for m in _EXIT.of(lowered).finditer(subject)]
    return hits


def error_signals(text: str) -> list[str]:
    """Distinct error signals in ``text`` in order of first appearance, at most
    :data:`MAX_SIGNALS`."""
    signals: list[str] = []
    for _, label in sorted(_signal_hits(text)):
        if label.lower() not in (s.lower() for s in signals):
            signals.append(label)
    return signals[:MAX_SIGNALS]


def richest_error_line(text: str) -> str:
    """The line of ``text`` with the most distinct error signals (the first one on
    ties), clipped to 160 characters; ``""`` when no line has any."""
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    labels: dict[int, set[str]] = {}
    for position, label in _signal_hits(text):
        labels.setdefault(bisect_right(starts, position) - 1, set()).add(label.lower())
    if not labels:
        return ""
    line = min(labels, key=lambda n: (-len(labels[n]), n))
    end = starts[line + 1] if line + 1 < len(starts) else len(text)
    return _clip(text[starts[line] : end], 160)


# --------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class _Context:
    """The request flattened into what the heuristics read."""

    domain: str
    summary: str
    notes: str
    priority: str
    status: str
    step_count: int
    ai_confidence: str
    tried: tuple[str, ...]
    #: The transcript, then the tried steps' outcomes; at most :data:`MAX_DETAIL_CHARS`.
    details: str
    message_count: int

    @property
    def evidence(self) -> str:
        """Everything that describes the failure (not the actions taken)."""
        return f"{self.summary}\n{self.notes}\n{self.details}"


def _bounded(text: object, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` as a string of at most about ``limit`` characters: head and tail."""
    value = str(text or "").strip()
    if len(value) <= limit:
        return value
    return f"{value[: limit // 2]}\n…\n{value[-(limit // 2) :]}"


def _context(request: AssessmentRequest) -> _Context:
    snap = request.snapshot
    tried_steps = [s for s in snap.get("tried_steps") or [] if isinstance(s, dict)]
    messages = [m for m in snap.get("transcript") or [] if isinstance(m, dict)]
    return _Context(
        domain=str(snap.get("problem_domain") or "general").strip() or "general",
        summary=_bounded(snap.get("problem_summary")),
        notes=_bounded(request.engineer_notes),
        priority=str(request.priority or "normal"),
        status=str(snap.get("status") or "unknown"),
        step_count=int(snap.get("step_count") or 0),
        ai_confidence=str(snap.get("confidence_tier") or "unknown"),
        tried=tuple(_bounded(s.get("description")) for s in tried_steps),
        details=_bounded(
            "\n".join(
                [_bounded(m.get("content")) for m in messages[-MAX_MESSAGES:]]
                + [_bounded(s.get("outcome")) for s in tried_steps]
            ),
            MAX_DETAIL_CHARS,
        ),
        message_count=len(messages),
    )


# --------------------------------------------------------------------------- playbook matching


@dataclass(frozen=True)
class _Match:
    signature: Signature
    hits: int


#: Each signature with its patterns compiled once (``re``'s own cache is a
#: lookup per search, and the playbook's patterns outnumber its size).
_COMPILED_PLAYBOOK = tuple(
    (signature, tuple(_Caseless.compile(rx) for rx in signature.patterns)) for signature in PLAYBOOK
)
_COMPILED_FALLBACKS = tuple((fallback, re.compile(fallback.domain, re.I)) for fallback in FALLBACKS)


def match_signatures(text: str) -> list[_Match]:
    """Signatures with at least one pattern in ``text``: most hits first, specific
    before broad, then in playbook order."""
    subject, lowered = _subject(text)
    matches = []
    for signature, patterns in _COMPILED_PLAYBOOK:
        hits = sum(1 for rx in patterns if rx.of(lowered).search(subject))
        if hits:
            matches.append(_Match(signature, hits))
    return sorted(matches, key=lambda m: (-m.hits, m.signature.broad))  # stable sort


def _fallback_for(domain: str) -> Fallback:
    for fallback, pattern in _COMPILED_FALLBACKS:
        if pattern.search(domain):
            return fallback
    return GENERIC_FALLBACK


# --------------------------------------------------------------------------- past fixes


@dataclass(frozen=True)
class _PastFix:
    past: PastResolution
    similarity: float


def _profile(summary: str, notes: str, domain: str) -> frozenset[str]:
    """Key words plus matched signature names: what similarity is computed over."""
    text = f"{summary}\n{notes}\n{domain}"
    return key_words(text) | {f"sig:{m.signature.name}" for m in match_signatures(text)}


@lru_cache(maxsize=PAST_PROFILE_CACHE)
def _past_profile(summary: str, notes: str, domain: str) -> frozenset[str]:
    """:func:`_profile` of a past resolution, cached: each assessment compares
    with up to 200 of them, mostly the same ones as the last assessment did."""
    return _profile(_bounded(summary, PAST_TEXT_CHARS), _bounded(notes, PAST_TEXT_CHARS), domain)


@lru_cache(maxsize=256)
def _domain_words(domain: str) -> frozenset[str]:
    return key_words(domain)


def _same_domain(a: str, b: str) -> bool:
    words = _domain_words(a)
    return bool(words) and words == _domain_words(b)


def similarity(ours: frozenset[str], domain: str, past: PastResolution) -> float:
    """Cosine of binary vectors: ``ours`` (this handoff's :func:`_profile`) against
    the past handoff's, plus :data:`DOMAIN_BONUS` when the domains agree."""
    theirs = _past_profile(past.problem_summary, past.engineer_notes, past.problem_domain)
    if not ours or not theirs:
        return 0.0
    cosine = len(ours & theirs) / math.sqrt(len(ours) * len(theirs))
    return cosine + (DOMAIN_BONUS if _same_domain(domain, past.problem_domain) else 0.0)


def similar_past_fixes(ctx: _Context, pasts: Sequence[PastResolution]) -> list[_PastFix]:
    """Past resolutions at or above :data:`SIMILARITY_THRESHOLD`, best first (ties by
    handoff id), with a non-blank resolution."""
    resolved = [p for p in pasts if p.resolution_notes.strip()]
    if not resolved:  # nothing to compare with: no profile of ours (half the matching)
        return []
    ours = _profile(ctx.summary, ctx.notes, ctx.domain)
    scored = [_PastFix(p, similarity(ours, ctx.domain, p)) for p in resolved]
    good = [f for f in scored if f.similarity >= SIMILARITY_THRESHOLD]
    return sorted(good, key=lambda f: (-f.similarity, f.past.handoff_id))


def _past_fix_step(fix: _PastFix) -> tuple[str, frozenset[str]]:
    summary = _clip(fix.past.problem_summary, 90)
    notes = _clip(fix.past.resolution_notes, 320)
    text = f"Apply the fix that resolved a similar escalation ('{summary}'): {notes}"
    return text, key_words(fix.past.resolution_notes)


def _past_fix_cause(fix: _PastFix) -> str:
    first = re.split(r"(?<=[.!?])\s", fix.past.resolution_notes.strip(), maxsplit=1)[0]
    summary = _clip(fix.past.problem_summary, 90)
    quote = _clip(first, 200)
    return f"Same pattern as the resolved escalation '{summary}', whose resolution reads: “{quote}”"


# --------------------------------------------------------------------------- selection


def _candidate_steps(
    fixes: Sequence[_PastFix], matches: Sequence[_Match], fallback: Fallback
) -> list[tuple[str, frozenset[str]]]:
    """(text, key words) for every possible step, best first: past fixes, then the
    signatures' steps interleaved, then the fallbacks."""
    candidates = [_past_fix_step(f) for f in fixes[:MAX_PAST_FIXES]]
    candidates += [_step_candidate(s) for s in _interleave(matches[:MAX_SIGNATURES])]
    candidates += [_step_candidate(s) for s in fallback.steps]
    if fallback is not GENERIC_FALLBACK:
        candidates += [_step_candidate(s) for s in GENERIC_FALLBACK.steps]
    return candidates


def _interleave(matches: Sequence[_Match]) -> list[Step]:
    """Round-robin over the signatures' steps, strongest signature first; a
    signature with more pattern hits starts up to two rounds early, a broad one a
    round late."""
    ranked = []
    for rank, match in enumerate(matches):
        head_start = min(match.hits, 3) - 1 - int(match.signature.broad)
        ranked += [(row - head_start, rank, step) for row, step in enumerate(match.signature.steps)]
    return [step for _, _, step in sorted(ranked, key=lambda r: r[:2])]


@cache  # the playbook's steps: a fixed set
def _step_candidate(step: Step) -> tuple[str, frozenset[str]]:
    return step.text, key_words(step.key or step.action)


def select_steps(
    candidates: Iterable[tuple[str, frozenset[str]]], tried: Sequence[str]
) -> list[str]:
    """Up to :data:`MAX_STEPS` candidate texts, in order, skipping any whose key words
    a tried step (or an already chosen step) mostly covers. Never empty."""
    tried_words = [w for w in (key_words(t) for t in tried) if w]
    chosen: list[tuple[str, frozenset[str]]] = []
    for text, words in candidates:
        if not words or any(_coverage(words, t) >= TRIED_COVERAGE for t in tried_words):
            continue
        if any(_coverage(words, w) >= DUPLICATE_COVERAGE for _, w in chosen):
            continue
        chosen.append((text, words))
        if len(chosen) == MAX_STEPS:
            break
    return [text for text, _ in chosen] or [LAST_RESORT.text]


def select_causes(
    fixes: Sequence[_PastFix], matches: Sequence[_Match], fallback: Fallback
) -> list[str]:
    """A strong past match first, then matched signatures; the domain fallback when
    fewer than two causes were found. At most :data:`MAX_CAUSES`."""
    causes = [_past_fix_cause(f) for f in fixes[:1] if f.similarity >= STRONG_SIMILARITY]
    causes += [m.signature.cause for m in matches]
    if len(causes) < 2:
        causes.append(fallback.cause)
    return list(dict.fromkeys(causes))[:MAX_CAUSES]


def confidence(
    *, fixes: Sequence[_PastFix], matches: Sequence[_Match], ctx: _Context
) -> ConfidenceTier:
    """Points: +2 when the best past fix is at least :data:`STRONG_SIMILARITY`
    similar (+1 when one merely passes the threshold); +1 per matched playbook
    signature, at most +2; +1 for rich context (a transcript of two or more
    messages plus tried steps or notes). ``high`` from 4 points, ``medium`` from
    2, ``low`` below."""
    points = 0
    if fixes:
        points += 2 if fixes[0].similarity >= STRONG_SIMILARITY else 1
    points += min(len(matches), 2)
    if ctx.message_count >= 2 and (ctx.tried or ctx.notes):
        points += 1
    if points >= 4:
        return ConfidenceTier.high
    return ConfidenceTier.medium if points >= 2 else ConfidenceTier.low


# --------------------------------------------------------------------------- summary


def _clip(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def summarize(ctx: _Context, fixes: Sequence[_PastFix]) -> str:
    """A few sentences: problem, notes, what was tried, error signals, the line
    with the most signals and the closest past escalation. At most
    :data:`MAX_SUMMARY_CHARS`; sentences that do not fit are left out whole."""
    problem = _clip(ctx.summary or "no problem summary given", 200)
    parts = [_sentence(f"{ctx.priority.capitalize()}-priority {ctx.domain} escalation: {problem}")]
    if ctx.notes and key_words(ctx.notes) != key_words(ctx.summary):
        parts.append(_sentence(f"Engineer notes: {_clip(ctx.notes, 200)}"))
    parts.append(_tried_sentence(ctx))
    signals = error_signals(ctx.evidence)
    if signals:
        parts.append(_sentence(f"Error signals: {', '.join(signals)}"))
    line = richest_error_line(ctx.details)
    if line:
        parts.append(f'Key error line: "{line}".')
    if fixes:
        closest = _clip(fixes[0].past.problem_summary, 90)
        parts.append(f"A similar escalation was resolved before in this org: '{closest}'.")
    return _fit(parts, MAX_SUMMARY_CHARS)


def _fit(parts: Sequence[str], limit: int) -> str:
    """The parts, in order, joined by spaces; a part that would overflow ``limit``
    is left out whole (the first one is clipped instead)."""
    text = _clip(parts[0], limit)
    for part in parts[1:]:
        if len(text) + 1 + len(part) <= limit:
            text = f"{text} {part}"
    return text


def _tried_sentence(ctx: _Context) -> str:
    session = (
        f"over {ctx.step_count} AI-session steps (status '{ctx.status}', "
        f"session confidence {ctx.ai_confidence})"
    )
    tried = [_clip(t, 60) for t in ctx.tried if t.strip()]
    if not tried:
        return f"Nothing was recorded as tried {session}."
    shown = "; ".join(tried[:3]) + ("; …" if len(tried) > 3 else "")
    noun = "step" if len(tried) == 1 else "steps"
    return f"The junior tried {len(tried)} {noun} ({shown}) {session}."


# --------------------------------------------------------------------------- the assessor


class HeuristicAssessor:
    """Offline, deterministic assessor; see the module docstring for the method."""

    name = "heuristic"

    def assess(self, request: AssessmentRequest) -> AssessmentResult:
        """Never raises for a well-formed request; every list is non-empty and
        bounded (:data:`MAX_CAUSES`, :data:`MAX_STEPS`)."""
        ctx = _context(request)
        matches = match_signatures(f"{ctx.evidence}\n{ctx.domain}")
        fixes = similar_past_fixes(ctx, request.past_resolutions)
        fallback = _fallback_for(ctx.domain)
        candidates = _candidate_steps(fixes, matches, fallback)
        return AssessmentResult(
            summary=summarize(ctx, fixes),
            likely_causes=select_causes(fixes, matches, fallback),
            suggested_steps=select_steps(candidates, ctx.tried),
            confidence=confidence(fixes=fixes, matches=matches, ctx=ctx),
        )
