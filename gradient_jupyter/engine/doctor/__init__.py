"""The bucket-setup doctor (README "Check a bucket's setup"): check a provider's bucket, say what is wrong and
exactly how to fix it.

Plain Python: the front ends (REST, magic, console script, panel) call `check`, `apply_cors` and `policy` and render
the `Report` (its HTML: output.py `ReportView`). Nothing in the bucket changes except a probe object under
`<teamId>/`, always removed, and the CORS rules when `apply_cors` is asked for explicitly.

The package: checks.py (the checks, in order), report.py (findings and their text and JSON), rules.py (the
IAM policy and the CORS rules it recommends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import BadInput
from ..providers import Provider
from .checks import Doctor
from .fixes import Form
from .report import FAIL, PASS, SKIP, WARN, Check, Report
from .rules import (
    CORS_METHODS,
    CORS_RULE_ID,
    cors_gaps,
    cors_rules,
    merge_cors_rules,
    policy,
    resolve_origins,
    seed_policy,
)

if TYPE_CHECKING:
    from ..core import Engine

__all__ = [
    "check",
    "apply_cors",
    "Form",
    "policy",
    "seed_policy",
    "cors_rules",
    "merge_cors_rules",
    "cors_gaps",
    "resolve_origins",
    "Check",
    "Report",
    "PASS",
    "WARN",
    "FAIL",
    "SKIP",
    "CORS_RULE_ID",
    "CORS_METHODS",
]


def check(
    engine: Engine, provider: Provider | str, *, origins=None, timeout: float | None = None, form: Form | None = None
) -> Report:
    """Run the bucket-setup checks on a provider's bucket, in order; each is bounded by `timeout` seconds.

    `origins`: browser origins to check CORS for (the front end passes the Jupyter server's own); the settings'
    `cors_origins` are always added. `form`: word the fixes for a form's fields and buttons (the panel).
    """
    return Doctor(engine, provider, origins, timeout, form).run()


def apply_cors(
    engine: Engine, provider: Provider | str, origins=None, *, timeout: float | None = None, form: Form | None = None
) -> Report:
    """Merge the recommended CORS rules into the bucket's own (never dropping one), then check again.

    The report's `action` says what was done; when the credentials may not change the rules it is a `fail` whose
    fix is the `aws s3api put-bucket-cors` command an administrator runs.
    """
    doctor = Doctor(engine, provider, origins, timeout, form)
    if doctor.embedded:
        raise BadInput(
            "Gradient Managed is embedded in this installation: browsers never reach it directly, so it "
            "has no CORS rules to apply.",
            reason="embedded-store",
        )
    if not doctor.origins:
        raise BadInput(doctor.fixes.no_origin("No origin to allow"), reason="no-origin")
    doctor.warm_up("apply-cors")
    action = doctor.bounded("apply-cors", doctor.apply_cors)
    report = doctor.run()
    report.action = action
    return report
