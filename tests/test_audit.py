"""scripts/audit.py's reading of pip-audit reports: a vulnerability fails the
run; a report in which nothing could be audited is not taken for a clean one."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "audit", Path(__file__).parents[1] / "scripts" / "audit.py"
)
assert _spec is not None and _spec.loader is not None
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)


def test_a_known_vulnerability_fails() -> None:
    report = {
        "dependencies": [
            {"name": "jinja2", "version": "2.10", "vulns": [
                {"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"]},
            ]},
            {"name": "redis", "version": "8.1.0", "vulns": []},
        ]
    }  # fmt: skip
    code, summary = audit.verdict(report)
    assert code == 1
    assert "jinja2 2.10: PYSEC-2019-217 (fixed in 2.10.1)" in summary


def test_nothing_audited_is_said_to_be_skipped_not_clean() -> None:
    report = {"dependencies": [{"name": "redis", "skip_reason": "Dependency not found on PyPI"}]}
    code, summary = audit.verdict(report)
    assert code == 0
    assert summary.startswith("dependency audit skipped")


def test_a_clean_report_counts_what_was_audited() -> None:
    report = {
        "dependencies": [
            {"name": "redis", "version": "8.1.0", "vulns": []},
            {"name": "local-thing", "skip_reason": "not on PyPI"},
        ]
    }
    assert audit.verdict(report) == (
        0,
        "dependency audit: 1 packages, no known vulnerability (1 skipped)",
    )
