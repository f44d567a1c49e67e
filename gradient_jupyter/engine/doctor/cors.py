"""The CORS checks (README "Check a bucket's setup"): the bucket's rules against each origin, a real browser
preflight to a presigned PUT URL, and `--fix`, which merges the recommended rule into the bucket's own."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from ..errors import GradientError, NotFound, StoreError
from .fixes import CORS_NEEDED_FOR, STORE_CORS_HINT, Fixes
from .report import FAIL, PASS, SKIP, WARN, Check
from .rules import CORS_RULE_ID, cors_gaps, merge_cors_rules

if TYPE_CHECKING:
    from ..providers import Provider
    from ..stores import Store


class CorsChecks:
    """The Doctor's CORS checks; the attributes and the calls below are the Doctor's (checks.py)."""

    provider: Provider
    store: Store
    origins: list[str]
    rules: list[dict] | None
    fixes: Fixes
    team: str
    where: str
    timeout: float
    embedded: bool
    _lock: threading.Lock

    if TYPE_CHECKING:

        def s3(self, op: str, **kwargs): ...

        def failure(self, cid: str, err: GradientError, prefix: str = "") -> Check: ...

        def translate(self, exc: Exception, op: str) -> GradientError: ...

    def check_cors(self) -> Check:
        if not self.origins:
            return Check("cors", SKIP, self.fixes.no_origin(), reason="no-origin")
        try:
            rules = self.store.call("get_bucket_cors").get("CORSRules", [])
        except NotFound as err:
            if err.reason != "no-cors":
                raise
            self.rules = []
            return Check(
                "cors",
                FAIL,
                f"The bucket has no CORS rules: browsers at {', '.join(self.origins)} "
                f"cannot GET or PUT its objects. {CORS_NEEDED_FOR}",
                self.fixes.cors_fix([]),
                reason="no-cors",
            )
        except StoreError as err:
            if err.reason == "access-denied":
                return Check(
                    "cors",
                    WARN,
                    "These credentials may not read the bucket's CORS rules (GetBucketCors is "
                    "denied, as expected with the least-privilege policy, which allows listing and object "
                    "actions only). The 'preflight' check tests from the browser's side whether CORS works.",
                    "Nothing to do if 'preflight' passes. Otherwise: " + self.fixes.cors_fix(None),
                    reason="access-denied",
                )
            if err.reason == "not-implemented":
                return Check(
                    "cors",
                    WARN,
                    "This store does not keep per-bucket CORS rules in the S3 API (MinIO, for "
                    "one, sets CORS for the whole server). The 'preflight' check tests whether CORS works.",
                    STORE_CORS_HINT,
                    reason="not-implemented",
                )
            raise
        self.rules = rules
        gaps = {o: g for o, g in cors_gaps(rules, self.origins).items() if g}
        if gaps:
            detail = "; ".join(f"no rule allows {' and '.join(g)} from {o}" for o, g in gaps.items())
            return Check(
                "cors",
                FAIL,
                f"The bucket's CORS rules ({len(rules)}) fall short: {detail}. {CORS_NEEDED_FOR}",
                self.fixes.cors_fix(rules),
                reason="cors-incomplete",
            )
        return Check("cors", PASS, f"The CORS rules allow GET and PUT from {', '.join(self.origins)}.")

    def check_preflight(self) -> Check:
        if not self.origins:
            return Check("preflight", SKIP, self.fixes.no_origin(), reason="no-origin")
        # A presigned URL of a key that is never written: OPTIONS changes nothing.
        url = self.store.presign("put_object", f"{self.team}/.gradient-doctor/preflight", expires=300)
        problems = []
        for origin in self.origins:
            status, headers = self.options(url, origin)
            allow_origin = headers.get("access-control-allow-origin")
            methods = {m.strip().upper() for m in headers.get("access-control-allow-methods", "").split(",")}
            if not 200 <= status < 300:
                problems.append(f"{origin}: HTTP {status}")
            elif allow_origin not in (origin, "*"):
                problems.append(f"{origin}: HTTP {status} without Access-Control-Allow-Origin for it")
            elif not methods & {"PUT", "*"}:
                problems.append(f"{origin}: PUT is not in Access-Control-Allow-Methods")
        if problems:
            return Check(
                "preflight",
                FAIL,
                "A browser's preflight (OPTIONS with Origin and Access-Control-Request-"
                f"Method: PUT) to a presigned URL of the bucket was refused: {'; '.join(problems)}.",
                self.fixes.cors_fix(self.rules) + "\n" + STORE_CORS_HINT,
                reason="preflight-refused",
            )
        return Check(
            "preflight",
            PASS,
            f"The store answers a browser's preflight for PUT to a presigned URL from {', '.join(self.origins)}.",
        )

    def options(self, url: str, origin: str) -> tuple[int, dict]:
        request = urllib.request.Request(
            url, method="OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": "PUT"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                return response.status, {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, {k.lower(): v for k, v in exc.headers.items()}
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise StoreError(
                    f"No answer from {self.where} within {self.timeout:g} s (preflight).", reason="timeout"
                ) from exc
            raise StoreError(
                f"Cannot connect to {self.where} for the preflight: {reason}.", reason="unreachable"
            ) from exc

    def apply_cors(self) -> Check:
        try:
            existing = self.store.call("get_bucket_cors").get("CORSRules", [])
        except NotFound as err:
            if err.reason != "no-cors":
                raise
            existing = []
        except StoreError as err:
            if err.reason == "access-denied":
                return Check(
                    "apply-cors",
                    FAIL,
                    "Nothing changed: these credentials may not read the bucket's CORS "
                    "rules (GetBucketCors is denied), and writing new ones blind would drop the rules it has.",
                    self.fixes.cors_fix(None, admin_only=True),
                    reason="access-denied",
                )
            if err.reason == "not-implemented":
                return Check(
                    "apply-cors",
                    FAIL,
                    "Nothing changed: this store does not keep per-bucket CORS rules in the S3 API.",
                    STORE_CORS_HINT,
                    reason="not-implemented",
                )
            raise
        merged = merge_cors_rules(existing, self.origins)
        if merged == existing:
            return Check(
                "apply-cors",
                PASS,
                f"The CORS rules already allow GET and PUT from {', '.join(self.origins)}; nothing changed.",
            )
        try:
            self.store.call("put_bucket_cors", CORSConfiguration={"CORSRules": merged})
        except StoreError as err:
            if err.reason == "access-denied":
                return Check(
                    "apply-cors",
                    FAIL,
                    "Nothing changed: these credentials may not change the bucket's CORS "
                    "rules (PutBucketCors is denied, as expected with the least-privilege policy).",
                    self.fixes.cors_fix(existing, admin_only=True),
                    reason="access-denied",
                )
            raise
        kept = len(existing)
        return Check(
            "apply-cors",
            PASS,
            f"Allowed GET and PUT from {', '.join(self.origins)} (rule "
            f"{CORS_RULE_ID!r}); kept the bucket's {kept} other rule(s).",
        )
