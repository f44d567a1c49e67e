"""The doctor's findings: each check, and the report as data, as text for a terminal and as JSON for REST (the
front ends render its HTML: output.py `ReportView`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..providers import Provider

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

TITLES = {
    "credentials": "Credentials",
    "bucket": "Bucket",
    "list": "Listing (s3:ListBucket)",
    "read-write": "Write, read back and delete",
    "conditional-writes": "Conditional writes (If-None-Match)",
    "cors": "CORS rules",
    "preflight": "CORS preflight",
    "generated-urls": "Generated URLs (sts:GetFederationToken)",
    "apply-cors": "Apply CORS rules",
}


@dataclass
class Check:
    """One finding: `status` is pass, warn, fail or skip; `fix` says exactly what to do when it is not pass."""

    id: str
    status: str
    detail: str
    fix: str = ""
    reason: str = ""

    @property
    def title(self) -> str:
        return TITLES.get(self.id, self.id)

    def to_json(self) -> dict:
        out = {"id": self.id, "title": self.title, "status": self.status, "detail": self.detail, "fix": self.fix}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class Report:
    """The doctor's report on one provider: text for a terminal, JSON for REST."""

    provider: Provider
    checks: list[Check]
    origins: list[str] = field(default_factory=list)
    action: Check | None = None  # what `apply_cors` did, when it was asked
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings and skips do not count)."""
        return not any(c.status == FAIL for c in self.checks)

    def __getitem__(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def where(self) -> str:
        """The bucket checked, in words: its name, endpoint and region."""
        p = self.provider
        if p.embedded:
            return "the embedded Gradient Managed store"
        return f"bucket {p.bucket!r} at {p.endpoint or 'AWS S3'}" + (
            f" ({p.config['region']})" if p.config.get("region") else ""
        )

    def summary(self) -> str:
        """The report's last line: how many checks failed, or that the bucket is set up."""
        counts = {s: sum(c.status == s for c in self.checks) for s in (PASS, WARN, FAIL, SKIP)}
        if counts[FAIL]:
            return f"{counts[FAIL]} check(s) failed: follow the fixes above."
        extra = f" ({counts[WARN]} warning(s))" if counts[WARN] else ""
        return f"No check failed{extra}: the bucket is set up."

    def to_json(self) -> dict:
        out = {
            "storageProviderId": self.provider.id,
            "storageProviderName": self.provider.name,
            "origins": list(self.origins),
            "checks": [c.to_json() for c in self.checks],
            "ok": self.ok,
        }
        if self.action:
            out["action"] = self.action.to_json()
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def __str__(self) -> str:
        lines = [f"Bucket setup of storage provider {self.provider.name!r} ({self.provider.id}): {self.where()}"]
        if self.origins:
            lines.append("Browser origins: " + ", ".join(self.origins))
        if self.action:
            lines += ["", *_text_check(self.action)]
        lines.append("")
        for c in self.checks:
            lines += _text_check(c)
        lines += [*(f"Note: {n}" for n in self.notes), "", self.summary()]
        return "\n".join(lines)

    __repr__ = __str__


def _text_check(c: Check) -> list[str]:
    lines = [f"[{c.status.upper()}] {c.id}: {c.title}"]
    lines += ["       " + line for line in c.detail.splitlines()]
    if c.fix and c.status != PASS:
        fix = c.fix.splitlines()
        lines += ["       Fix: " + fix[0]] + ["         " + line for line in fix[1:]]
    return lines
