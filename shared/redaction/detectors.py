"""What counts as a secret in free text, and where exactly it starts and ends.

Two sources, both plain regular expressions run once over a whole field:

* **detect-secrets' typed plugins** (Yelp's maintained rule set): AWS, GitHub,
  GitLab, Slack, Stripe, JWT, private keys, basic auth in URLs, OpenAI,
  SendGrid, Twilio, Discord, Telegram, Square, PyPI, Azure storage, Mailchimp.
  We use their ``denylist`` patterns, not ``scan_line``: the scan machinery costs
  ~1.4 ms a line, and a plugin's match is not always the whole secret (the JWT
  pattern stops before the signature, the private-key one matches only the
  ``BEGIN`` line, the Stripe one only 24 characters). Each rule says how a match
  extends to the whole secret.
* **Our rules for what prose carries and the plugins lack**: whole PEM blocks,
  database and other URLs with a password, ``github_pat_`` tokens, Stripe test
  keys, bearer and basic ``Authorization`` headers, and ``password=`` /
  ``secret:`` / ``token=`` style assignments whose value looks like a secret
  (the two high-entropy plugins are left out: on prose they flag ordinary words,
  hashes and commit ids).
"""

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector


@dataclass(frozen=True, order=True)
class Span:
    """``text[start:end]`` is a secret of ``kind``."""

    start: int
    end: int
    kind: str


#: From a match in ``text`` to the secret's (start, end).
Extent = Callable[[str, re.Match[str]], tuple[int, int]]

_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]*")
_JWT_TAIL = re.compile(r"(?:[A-Za-z0-9_=+/-]|\.(?=[A-Za-z0-9_-]))*")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*?(?:PRIVATE KEY|PRIVATE KEY BLOCK)-----")


def whole(_: str, match: re.Match[str]) -> tuple[int, int]:
    return match.start(), match.end()


def group(number: int | str) -> Extent:
    """The match's group ``number`` only (e.g. the password of ``user:password@``)."""

    def extent(_: str, match: re.Match[str]) -> tuple[int, int]:
        return match.start(number), match.end(number)

    return extent


def tail(pattern: re.Pattern[str]) -> Extent:
    """The match, then as far on as ``pattern`` matches (the rest of a token
    whose rule matched only its first characters)."""

    def extent(text: str, match: re.Match[str]) -> tuple[int, int]:
        more = pattern.match(text, match.end())
        return match.start(), more.end() if more else match.end()

    return extent


def pem_block(text: str, match: re.Match[str]) -> tuple[int, int]:
    """From the ``-----BEGIN`` of the key's line to its ``-----END ...-----``,
    across lines (real or ``\\n`` escaped, as in a service-account JSON). Without
    an END line (a truncated paste), to the end of the text: nothing of the key
    may stay."""
    dashes = text.rfind("-----", max(0, match.start() - 5), match.start())
    start = dashes if dashes >= 0 else match.start()
    end = _PEM_END.search(text, match.end())
    return start, end.end() if end else len(text)


#: The default for a plugin's match: it and the rest of its token.
_TOKEN = tail(_TOKEN_TAIL)


@dataclass(frozen=True)
class Rule:
    """A secret of ``kind`` wherever ``pattern`` matches, spanning ``extent``.
    ``hints``: lower-case strings of which the lower-cased text must hold one
    for the pattern to be worth running (empty: always run)."""

    kind: str
    pattern: re.Pattern[str]
    extent: Extent = whole
    hints: tuple[str, ...] = ()

    def spans(self, text: str, lowered: str) -> Iterable[Span]:
        if self.hints and not any(hint in lowered for hint in self.hints):
            return
        for match in self.pattern.finditer(text):
            start, end = self.extent(text, match)
            if end > start:
                yield Span(start, end, self.kind)


def _plugin(
    detector: type[RegexBasedDetector],
    kind: str,
    *,
    extent: Extent | None = None,
    hints: tuple[str, ...] = (),
    each: Sequence[tuple[str, Extent, tuple[str, ...]] | None] = (),
) -> list[Rule]:
    """One rule per pattern of ``detector``'s ``denylist``; ``each[i]``, when
    given, overrides (kind, extent, hints) for pattern ``i``."""
    rules = []
    # ``denylist`` is declared an abstract property, but every plugin sets it on the class.
    patterns: Sequence[re.Pattern[str]] = detector.denylist  # type: ignore[assignment]
    for index, pattern in enumerate(patterns):
        override = each[index] if index < len(each) else None
        rule_kind, rule_extent, rule_hints = override or (kind, extent or _TOKEN, hints)
        rules.append(Rule(rule_kind, pattern, rule_extent, rule_hints))
    return rules


_GITLAB_PREFIXES = (
    *("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "gr1348941"),
    *("glcbt-", "glimt-", "glptt-", "glagent-", "gloas-"),
)

#: detect-secrets' typed plugins, with how each match extends to the whole secret.
_TYPED: list[Rule] = [
    *_plugin(
        PrivateKeyDetector,
        "private key",
        extent=pem_block,
        hints=("private key", "putty-user-key"),
    ),
    *_plugin(
        AWSKeyDetector,
        "AWS access key",
        hints=("a3t", "abia", "acca", "akia", "asia"),
        each=[None, ("AWS secret key", group(1), ("aws",))],
    ),
    *_plugin(GitHubTokenDetector, "GitHub token", hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    *_plugin(GitLabTokenDetector, "GitLab token", hints=_GITLAB_PREFIXES),
    *_plugin(
        SlackDetector,
        "Slack token",
        extent=tail(re.compile(r"[A-Za-z0-9-]*")),
        hints=("xox",),
        each=[None, ("Slack webhook URL", tail(_TOKEN_TAIL), ("hooks.slack.com",))],
    ),
    *_plugin(StripeDetector, "Stripe key", hints=("k_live_",)),
    *_plugin(JwtTokenDetector, "JWT", extent=tail(_JWT_TAIL), hints=("eyj",)),
    *_plugin(BasicAuthDetector, "URL password", extent=group(1), hints=("://",)),
    *_plugin(OpenAIDetector, "OpenAI key", hints=("t3blbkfj",)),
    *_plugin(SendGridDetector, "SendGrid key", hints=("sg.",)),
    *_plugin(TwilioKeyDetector, "Twilio key", hints=("ac", "sk")),
    *_plugin(DiscordBotTokenDetector, "Discord token", hints=(".",)),
    *_plugin(TelegramBotTokenDetector, "Telegram token", hints=(":",)),
    *_plugin(SquareOAuthDetector, "Square secret", hints=("sq0csp-",)),
    *_plugin(PypiTokenDetector, "PyPI token", hints=("pypi-",)),
    *_plugin(AzureStorageKeyDetector, "Azure storage key", hints=("accountkey=",)),
    *_plugin(MailchimpDetector, "Mailchimp key", hints=("-us",)),
]

_DATABASE_SCHEMES = frozenset(
    ("postgres", "postgresql", "mysql", "mariadb", "mongodb", "redis", "rediss", "valkey")
    + ("amqp", "amqps", "mssql", "sqlserver", "oracle", "cockroachdb", "clickhouse")
    + ("cassandra", "neo4j", "couchdb", "elasticsearch")
)
_SCHEME_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}$")
#: After ``://``: ``user:password@`` then a host; the password runs to the last
#: ``@`` before the host (passwords hold ``@`` and ``!``, which detect-secrets'
#: basic-auth rule refuses).
_USERINFO = re.compile(r"[^\s:/?#@\[\]]*:(?P<secret>[^\s/]+)@(?=[^\s@/]*[\w\]])")


@dataclass(frozen=True)
class _UrlPasswordRule(Rule):
    """The password of ``scheme://user:password@host``: ``database password``
    for a database scheme (a driver suffix such as ``+psycopg`` aside), else
    ``URL password``. Found from each ``://``, not by scanning every word."""

    def spans(self, text: str, lowered: str) -> Iterable[Span]:
        at = text.find("://")
        while at >= 0:
            userinfo = _USERINFO.match(text, at + 3)
            if userinfo:
                scheme = _SCHEME_BEFORE.search(text, max(0, at - 31), at)
                name = scheme[0].lower().split("+")[0] if scheme else ""
                kind = "database password" if name in _DATABASE_SCHEMES else "URL password"
                yield Span(userinfo.start("secret"), userinfo.end("secret"), kind)
            at = text.find("://", at + 3)


#: Keys whose value is a secret: a key ends with one of these (``DB_PASSWORD``,
#: ``client_secret``, ``x-api-key``), then ``=``, ``:``, ``:=`` or ``=>``.
_SECRET_KEYS = (
    r"password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key[_-]?id|credentials?|auth"
)
_ASSIGNMENT_SOURCE = (
    r"(?:" + _SECRET_KEYS + r")(?![A-Za-z0-9])"
    r"[\"']?[ \t]*(?:=>|:=|=|:)[ \t]*"
    r"(?:(?P<quote>[\"'])(?P<quoted>[^\"'\n]{1,300})(?P=quote)"
    r"|(?P<bare>[^\s\"',;&<>()\[\]{}]{1,300}))"
)
_ASSIGNMENT = re.compile(_ASSIGNMENT_SOURCE)  # run on lower-cased text
_ASSIGNMENT_ANY_CASE = re.compile(_ASSIGNMENT_SOURCE, re.IGNORECASE)
_KEY_BEFORE = re.compile(r"[A-Za-z0-9_.-]{0,60}$")
_PLACEHOLDER = re.compile(r"^(?:[$<{%*\[(]|x{3,}|\.{3})", re.IGNORECASE)
_NOT_SECRETS = frozenset(
    ("null", "none", "nil", "true", "false", "undefined", "required", "optional", "empty")
    + ("unset", "missing", "redacted", "invalid", "expired", "revoked", "rotated")
)
_WORDS = re.compile(r"^[a-z]+(?:[-_.][a-z]+)*$")
_DIGITS = re.compile(r"^\d+$")


def _looks_secret(value: str) -> bool:
    """Tuned on prose: ``password: incorrect`` or ``token: expired`` name no
    secret; ``password=Hunter2!`` and a 20-character random string do."""
    if len(value) < 6 or _PLACEHOLDER.match(value) or value.lower() in _NOT_SECRETS:
        return False
    if _DIGITS.match(value):
        return len(value) >= 12  # ports, counts and ids are shorter
    if _WORDS.match(value):
        return len(value) >= 24  # a lower-case word or two is prose, a long phrase is not
    has_digit = any(c.isdigit() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    has_inner_upper = any(c.isupper() for c in value[1:])
    return has_digit or has_symbol or has_inner_upper or len(value) >= 16


def _assignment_kind(key: str) -> str:
    key = key.lower()
    if "aws" in key and ("secret" in key or "access" in key):
        return "AWS secret key"
    if "private" in key and "key" in key:
        return "GCP service-account key"
    for word, kind in (
        ("pass", "password"),
        ("pwd", "password"),
        ("token", "token"),
        ("auth", "token"),
        ("secret", "secret"),
        ("credential", "credentials"),
    ):
        if word in key:
            return kind
    return "API key"


@dataclass(frozen=True)
class _AssignmentRule(Rule):
    """``key = value`` (``:``, ``:=``, ``=>``; quoted or bare) where the key
    names a secret and the value looks like one."""

    def spans(self, text: str, lowered: str) -> Iterable[Span]:
        if "=" not in text and ":" not in text:
            return
        # Matched on the lower-cased text (a case-sensitive search is ~3x faster)
        # when lower-casing kept every offset; the value is read from ``text``.
        aligned = len(lowered) == len(text)
        haystack, pattern = (lowered, self.pattern) if aligned else (text, _ASSIGNMENT_ANY_CASE)
        for match in pattern.finditer(haystack):
            name = "quoted" if match.group("quoted") is not None else "bare"
            value = text[match.start(name) : match.end(name)]
            if _looks_secret(value):
                key = _KEY_BEFORE.search(haystack, max(0, match.start() - 60), match.start())
                kind = _assignment_kind((key[0] if key else "") + match[0])
                yield Span(match.start(name), match.end(name), kind)


#: Before the typed rules: a database URL's password is named as such, not as
#: detect-secrets' basic auth.
_URL_PASSWORDS = _UrlPasswordRule("URL password", _USERINFO)

_OURS: list[Rule] = [
    Rule("GitHub token", re.compile(r"github_pat_[A-Za-z0-9_]{22,}"), hints=("github_pat_",)),
    Rule("Stripe key", re.compile(r"(?:sk|rk)_test_[0-9a-zA-Z]{16,}"), hints=("k_test_",)),
    Rule("Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}"), hints=("aiza",)),
    Rule("npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), hints=("npm_",)),
    Rule(
        "bearer token",
        re.compile(r"\bbearer[ \t]+([A-Za-z0-9._~+/-]{16,}=*)", re.I),
        group(1),
        hints=("bearer",),
    ),
    Rule(
        "basic auth credentials",
        re.compile(
            r"\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?basic[ \t]+([A-Za-z0-9+/]+=*)", re.I
        ),
        group(1),
        hints=("basic",),
    ),
    _AssignmentRule("secret", _ASSIGNMENT),
]

#: In priority order: where two spans start together, the earlier rule names the kind.
BUILT_IN_RULES: tuple[Rule, ...] = (_URL_PASSWORDS, *_TYPED, *_OURS)


def find_secrets(text: str, rules: Sequence[Rule] = BUILT_IN_RULES) -> list[Span]:
    """Every secret in ``text`` by the built-in rules, overlapping spans merged
    (the first to start, or the first rule, names the kind), in text order."""
    lowered = text.lower()
    # The hints looked for once each, not once per rule: most texts hold none, and
    # asking each of 40 rules cost more than the few searches that then run.
    hints = _BUILT_IN_HINTS if rules is BUILT_IN_RULES else _hints(rules)
    present = {hint for hint in hints if hint in lowered}
    found = [
        (span.start, priority, -span.end, span)
        for priority, rule in enumerate(rules)
        if not rule.hints or not present.isdisjoint(rule.hints)
        for span in rule.spans(text, lowered)
    ]
    return merge(span for *_, span in sorted(found))


def _hints(rules: Sequence[Rule]) -> frozenset[str]:
    return frozenset(hint for rule in rules for hint in rule.hints)


_BUILT_IN_HINTS = _hints(BUILT_IN_RULES)


def merge(spans: Iterable[Span]) -> list[Span]:
    """``spans`` (sorted by start) with overlapping ones joined."""
    merged: list[Span] = []
    for span in spans:
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, span.end), last.kind)
        else:
            merged.append(span)
    return merged
