"""Dependency audit: pip-audit over the project's virtual environment.

Exits 1 when an installed dependency has a known vulnerability. pip-audit says
"No known vulnerabilities found" even when it could audit nothing (its
vulnerability service unreachable, or a package index without PyPI's JSON API,
as on the CI machines): then this says so and exits 0, since silence from an
unreachable database proves nothing either way.

    .venv/bin/python scripts/audit.py
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def verdict(report: dict) -> tuple[int, str]:
    """The exit code and a summary for a pip-audit JSON report."""
    dependencies = report.get("dependencies", [])
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    vulnerable = [dep for dep in audited if dep.get("vulns")]
    if vulnerable:
        lines = [
            f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {_fixes(vuln)})"
            for dep in vulnerable
            for vuln in dep["vulns"]
        ]
        return 1, "known-vulnerable dependencies:\n  " + "\n  ".join(lines)
    if not audited:
        return 0, (
            f"dependency audit skipped: none of {len(dependencies)} packages could be checked "
            "(the vulnerability service is not reachable from here)"
        )
    skipped = len(dependencies) - len(audited)
    return (
        0,
        f"dependency audit: {len(audited)} packages, no known vulnerability ({skipped} skipped)",
    )


def _fixes(vuln: dict) -> str:
    return ", ".join(vuln.get("fix_versions", [])) or "no release"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        run = subprocess.run(
            [sys.executable, "-m", "pip_audit", "--local", "--skip-editable",
             "--progress-spinner", "off", "--format", "json", "--output", str(out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if not out.exists() or not out.read_text().strip():
            print(f"dependency audit skipped: pip-audit gave no report\n{run.stderr[-2000:]}")
            return 0
        code, summary = verdict(json.loads(out.read_text()))
    print(summary)
    return code


if __name__ == "__main__":
    sys.exit(main())
