"""The doctor's findings: each check, and the report as text for a terminal, HTML for a notebook and JSON
for REST."""

from __future__ import annotations

import html
import json
import re
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
    """The doctor's report on one provider: text for a terminal, HTML for a notebook, JSON for REST."""

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

    def _where(self) -> str:
        p = self.provider
        if p.embedded:
            return "the embedded Gradient Managed store"
        return f"bucket {p.bucket!r} at {p.endpoint or 'AWS S3'}" + (
            f" ({p.config['region']})" if p.config.get("region") else ""
        )

    def _summary(self) -> str:
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
        lines = [f"Bucket setup of storage provider {self.provider.name!r} ({self.provider.id}): {self._where()}"]
        if self.origins:
            lines.append("Browser origins: " + ", ".join(self.origins))
        if self.action:
            lines += ["", *_text_check(self.action)]
        lines.append("")
        for c in self.checks:
            lines += _text_check(c)
        lines += [*(f"Note: {n}" for n in self.notes), "", self._summary()]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        head = (
            f"<b>Bucket setup of storage provider {e(self.provider.name)} ({e(self.provider.id)})</b>: "
            f"{e(self._where())}"
        )
        if self.origins:
            head += "<br>Browser origins: " + e(", ".join(self.origins))
        rows = [self.action] if self.action else []
        body = "".join(_html_row(c) for c in rows + self.checks)
        notes = "".join(f"<p>Note: {e(n)}</p>" for n in self.notes)
        return (
            f"<div class='gradient-doctor'><p>{head}</p><table><thead><tr><th style='text-align:left'>status</th>"
            "<th style='text-align:left'>check</th><th style='text-align:left'>detail and fix</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{notes}<p>{e(self._summary())}</p></div>"
        )


def _text_check(c: Check) -> list[str]:
    lines = [f"[{c.status.upper()}] {c.id}: {c.title}"]
    lines += ["       " + line for line in c.detail.splitlines()]
    if c.fix and c.status != PASS:
        fix = c.fix.splitlines()
        lines += ["       Fix: " + fix[0]] + ["         " + line for line in fix[1:]]
    return lines


_COLOURS = {PASS: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e", SKIP: "#6e7781"}


def _marked(text: str) -> str:
    """Escaped text with what to type as <code>, the words around it as words: backticks are how the fixes quote
    a command within a sentence; a line of its own that is a command (`aws ...`, kept bare so it can be pasted
    from the text report) or a JSON document (a policy statement, CORS rules) is code too."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        end = _json_end(lines, i)
        if end is not None:
            out.append((True, "\n".join(lines[i:end])))
            i = end
            continue
        out.append((lines[i].startswith("aws "), lines[i]))
        i += 1
    shown = ""
    for n, (code, line) in enumerate(out):
        if code:
            shown += f"<code style='display:block'>{html.escape(line)}</code>"
        else:
            after_text = n > 0 and not out[n - 1][0]
            shown += ("\n" if after_text else "") + re.sub(r"`([^`\n]+)`", r"<code>\1</code>", html.escape(line))
    return shown


def _json_end(lines: list[str], start: int) -> int | None:
    """The end (exclusive) of the JSON document that begins at lines[start], if one does."""
    if not lines[start].startswith(("{", "[")):
        return None
    for end in range(start + 1, len(lines) + 1):
        try:
            json.loads("\n".join(lines[start:end]))
        except ValueError:
            continue
        return end
    return None


# Wrap at spaces, never inside a word or an id (notebook CSS breaks <pre> anywhere); a word longer than the line
# (a URL) may still break. Words in the page's font: only what to type is <code>.
_FIX_STYLE = "white-space:pre-wrap; word-break:normal; overflow-wrap:break-word; margin:0.3em 0"


def _html_row(c: Check) -> str:
    e = html.escape
    badge = f"<b style='color:{_COLOURS.get(c.status, '#000')}'>{e(c.status.upper())}</b>"
    fix = f"<div class='gradient-fix' style='{_FIX_STYLE}'>{_marked(c.fix)}</div>" if c.fix and c.status != PASS else ""
    return (
        f"<tr data-check='{e(c.id)}'><td style='text-align:left; vertical-align:top'>{badge}</td>"
        f"<td style='text-align:left; vertical-align:top'>{e(c.title)}</td>"
        f"<td style='text-align:left'>{_marked(c.detail)}{fix}</td></tr>"
    )
