"""The checks themselves, in order, each bounded in time (docs: README "Check a bucket's setup")."""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import TYPE_CHECKING, cast

from ..errors import BadInput, Conflict, GradientError, NotFound, StoreError
from .cors import CorsChecks
from .fixes import Fixes, Form
from .report import FAIL, PASS, SKIP, WARN, Check, Report
from .rules import resolve_origins

if TYPE_CHECKING:
    from ..core import Engine
    from ..stores import LocalStore, S3Store

ORDER = ("credentials", "bucket", "list", "read-write", "conditional-writes", "cors", "preflight", "generated-urls")
# A check runs only when the checks it builds on did not fail.
NEEDS = {
    "bucket": ("credentials",),
    "list": ("bucket",),
    "read-write": ("bucket",),
    "conditional-writes": ("read-write",),
    "cors": ("bucket",),
    "preflight": ("bucket",),
    "generated-urls": ("credentials",),
}
EMBEDDED_SKIPS = {
    "credentials": "Embedded store: it lives in the data home and needs no credentials.",
    "cors": "Embedded store: no CORS needed. Files go through the Jupyter server, never from the browser straight "
    "to a bucket.",
    "preflight": "Embedded store: no CORS needed, so there is no preflight to test.",
    "generated-urls": "Embedded store: no federation tokens needed. Files go through the Jupyter server.",
}


class Doctor(CorsChecks):
    """One run of the checks on one provider's bucket."""

    def __init__(self, engine: Engine, provider, origins, timeout, form: Form | None = None):
        self.engine = engine
        self.form = form
        self.provider = engine.registry.get(provider) if isinstance(provider, str) else provider
        # A provider checked before it is added (the panel's "Add and check") has no id any command knows yet.
        self.registered = any(p.id == self.provider.id for p in engine.registry.list())
        self.origins = resolve_origins(engine, origins)
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise BadInput(f"Invalid timeout {timeout!r}: give a number of seconds above 0.")
        self.timeout = float(timeout or min(engine.settings.store_timeout, 10.0))
        base = engine.store(self.provider)
        self.embedded = base.embedded
        # The doctor's own client: one attempt and a short timeout, so a dead endpoint is reported, not retried.
        self.store = base.variant(timeout=self.timeout, attempts=1)
        self.where = "the embedded store" if self.embedded else (self.provider.endpoint or "AWS S3")
        self.team = engine.team_id
        self.probes: set[str] = set()
        self.rules: list[dict] | None = None  # the bucket's CORS rules, once read
        self._lock = threading.Lock()
        self.fixes = Fixes(engine, self.provider, self.registered, form, self.origins)

    # -- running ---------------------------------------------------------------------------------------------
    def run(self) -> Report:
        checks: list[Check] = []
        failed: dict[str, str] = {}  # check id -> the failed check that stopped it
        try:
            for cid in ORDER:
                root = next((failed[d] for d in NEEDS.get(cid, ()) if d in failed), None)
                if root:
                    c = Check(cid, SKIP, f"Not run: the '{root}' check failed.", reason="blocked")
                    failed[cid] = root
                elif self.embedded and cid in EMBEDDED_SKIPS:
                    c = Check(cid, SKIP, EMBEDDED_SKIPS[cid], reason="embedded-store")
                else:
                    self.warm_up(cid)
                    c = self.bounded(cid, getattr(self, "check_" + cid.replace("-", "_")))
                    if c.status == FAIL:
                        failed[cid] = cid
                checks.append(c)
        finally:
            notes = self._remove_leftover_probes()
        return Report(self.provider, self.settle_cors(checks), self.origins, notes=notes)

    @staticmethod
    def settle_cors(checks: list[Check]) -> list[Check]:
        """The real preflight decides: rules that look short while the store does answer browsers (it applies CORS
        some other way, or a wildcard rule serves them) are a warning, not a failure."""
        found = {c.id: c for c in checks}
        cors, preflight = found.get("cors"), found.get("preflight")
        if cors is None or preflight is None or cors.status != FAIL or preflight.status != PASS:
            return checks
        settled = Check(
            "cors",
            WARN,
            cors.detail + " But the store does answer a real browser preflight for these "
            "origins (see 'preflight'), so browsers are served: nothing needs to change now.",
            "Nothing to do. To give the bucket rules of its own anyway: " + cors.fix,
            reason=cors.reason,
        )
        return [settled if c is cors else c for c in checks]

    @property
    def s3_store(self) -> S3Store:
        """The doctor's store as the S3 store it is: only checks of a bucket that is not embedded call this."""
        assert not self.embedded
        return cast("S3Store", self.store)

    def warm_up(self, cid: str) -> None:
        """Make the clients a check needs before its time bound starts: that is local work, not the store's."""
        if self.embedded:
            return
        try:
            self.s3_store.client  # noqa: B018
            if cid == "generated-urls" or (cid == "credentials" and not self.provider.endpoint):
                self.s3_store.client_for("sts")
        except Exception:  # e.g. an unknown profile: the check meets it again and reports it
            pass

    def bounded(self, cid: str, method) -> Check:
        """Run one check in a worker thread and give up waiting after the time bound."""
        box: dict[str, Check] = {}

        def work():
            try:
                box["check"] = method()
            except Exception as exc:  # every failure becomes a finding, never a traceback
                box["check"] = self.failure(cid, self.translate(exc, cid))

        worker = threading.Thread(target=work, name=f"gradient-doctor-{cid}", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive() or "check" not in box:
            return Check(
                cid,
                FAIL,
                f"No answer from {self.where} within {self.timeout:g} s.",
                self.fixes.fix_for(cid, "timeout"),
                reason="timeout",
            )
        return box["check"]

    def translate(self, exc: Exception, op: str) -> GradientError:
        if isinstance(exc, GradientError):
            return exc
        if not self.embedded:
            exc = self.s3_store.translate(exc, op)
        if isinstance(exc, GradientError):
            return exc
        return StoreError(f"Unexpected error during {op}: {type(exc).__name__}: {exc}", reason="unexpected")

    def failure(self, cid: str, err: GradientError, prefix: str = "") -> Check:
        return Check(cid, FAIL, prefix + err.message, self.fixes.fix_for(cid, err.reason), reason=err.reason)

    def s3(self, op: str, **kwargs):
        """One call on the doctor's S3 client (bucket-less calls too), translating errors."""
        try:
            return getattr(self.s3_store.client, op)(**kwargs)
        except GradientError:
            raise
        except Exception as exc:
            raise self.translate(exc, op) from exc

    # -- credentials, bucket, list -----------------------------------------------------------------------------
    def check_credentials(self) -> Check:
        if not self.provider.endpoint:
            # On AWS, STS names the identity; fall back to S3 when STS is out of reach (e.g. a VPC without it).
            try:
                arn = self.s3_store.client_for("sts").get_caller_identity()["Arn"]
                return Check("credentials", PASS, f"AWS accepts the credentials (identity {arn}).")
            except Exception as exc:
                err = self.translate(exc, "get_caller_identity")
                if err.reason in ("invalid-credentials", "signature-mismatch", "no-credentials"):
                    return self.failure("credentials", err)
        try:
            self.s3("list_buckets")
        except (StoreError, NotFound) as err:
            if isinstance(err, StoreError) and err.reason == "access-denied":
                return Check(
                    "credentials",
                    PASS,
                    "The store accepts the access key and its signature (it may not "
                    "list all buckets, which is not needed).",
                )
            not_s3 = ("store-error", "no-such-key", "not-found", "invalid-request")
            if isinstance(err, NotFound) or err.reason in not_s3:
                return Check(
                    "credentials",
                    FAIL,
                    f"{self.where} answered, but not like an S3 store ({err.message}).",
                    self.fixes.fix_for("credentials", "not-s3"),
                    reason="not-s3",
                )
            raise
        return Check("credentials", PASS, "The store accepts the access key and its signature.")

    def check_bucket(self) -> Check:
        b = self.provider.bucket
        if self.embedded:
            return Check("bucket", PASS, f"The embedded store is the folder {cast('LocalStore', self.store).root}.")
        try:
            headers = self.s3("head_bucket", Bucket=b)["ResponseMetadata"].get("HTTPHeaders", {})
        except StoreError as err:
            if err.reason != "access-denied":
                raise
            # HeadBucket refused: list to tell a missing bucket from one these credentials may not inspect.
            try:
                self.s3("list_objects_v2", Bucket=b, Prefix=self.team, MaxKeys=1)
            except StoreError as err2:
                if err2.reason != "access-denied":
                    raise
                return Check(
                    "bucket",
                    PASS,
                    f"Bucket {b!r} answers at {self.where}, but these credentials may "
                    "neither read its metadata nor list it (see the 'list' check).",
                )
            return Check("bucket", PASS, f"Bucket {b!r} exists at {self.where}.")
        actual, configured = headers.get("x-amz-bucket-region"), self.provider.config.get("region")
        if actual and not self.provider.endpoint and actual != (configured or "us-east-1"):
            return Check(
                "bucket",
                WARN,
                f"Bucket {b!r} is in region {actual}, but the provider says "
                f"{configured or 'nothing (us-east-1)'}: requests are redirected, but URLs generated for "
                "browsers would be signed for the wrong region.",
                f"Set the bucket's region: {self.fixes.update('region', actual)}.",
                reason="wrong-region",
            )
        return Check(
            "bucket", PASS, f"Bucket {b!r} exists at {self.where}" + (f" (region {actual})." if actual else ".")
        )

    def check_list(self) -> Check:
        try:
            if self.embedded:
                next(iter(self.store.list(self.team + "/")), None)
            else:
                # Prefix without '/': some S3 emulators mis-sign an encoded slash in the query.
                self.s3("list_objects_v2", Bucket=self.provider.bucket, Prefix=self.team, MaxKeys=1)
        except StoreError as err:
            if err.reason == "access-denied":
                return Check(
                    "list",
                    FAIL,
                    "Listing the bucket is denied for these credentials (s3:ListBucket), "
                    "so datasets, versions and files cannot be found.",
                    self.fixes.fix_for("list", err.reason),
                    reason=err.reason,
                )
            raise
        if self.embedded:
            return Check("list", PASS, f"The embedded store lists {self.team}/.")
        return Check("list", PASS, f"Listing {self.team}/ is allowed.")

    # -- writes ------------------------------------------------------------------------------------------------
    def probe_key(self) -> str:
        key = f"{self.team}/.gradient-doctor/probe-{secrets.token_hex(8)}"
        with self._lock:
            self.probes.add(key)
        return key

    def remove_probe(self, key: str) -> GradientError | None:
        """Delete a probe object; returns the error instead of raising so the check can report it."""
        try:
            if self.embedded:
                self.store.delete([key])
            else:
                self.store.call("delete_object", key)
        except Exception as exc:
            return self.translate(exc, "delete_object")
        with self._lock:
            self.probes.discard(key)
        return None

    def _remove_leftover_probes(self) -> list[str]:
        notes = []
        for key in sorted(self.probes):
            box: dict[str, object] = {}  # each thread its own box: one that outlives its join writes only there
            worker = threading.Thread(target=lambda k=key, box=box: box.update(err=self.remove_probe(k)), daemon=True)
            worker.start()
            worker.join(self.timeout)
            if worker.is_alive() or box.get("err"):
                notes.append(
                    f"The probe object {key!r} could not be removed; delete it with "
                    f"`aws s3 rm s3://{self.provider.bucket}/{key}{self.fixes.cli_where()}`."
                )
        return notes

    def check_read_write(self) -> Check:
        key = self.probe_key()
        data = b"gradient-jupyter bucket check " + secrets.token_bytes(32)
        step = "write"
        try:
            self.store.put_bytes(key, data, sha256=hashlib.sha256(data).hexdigest())
            step = "read back"
            same = self.store.get_bytes(key) == data
        except GradientError as err:
            self.remove_probe(key)
            return self.failure("read-write", err, f"Could not {step} a probe object under {self.team}/: ")
        left = self.remove_probe(key)
        if not same:
            return Check(
                "read-write",
                FAIL,
                "The probe object read back differs from what was written: the store "
                "or something between (a proxy) changes data.",
                "Check the endpoint URL and any proxy in "
                "between; gradient-jupyter verifies every byte, so loads from this store would fail.",
                reason="integrity",
            )
        if left:
            return self.failure(
                "read-write", left, f"Wrote and read back the probe object {key!r}, but could not delete it: "
            )
        return Check(
            "read-write", PASS, f"Wrote a probe object under {self.team}/, read it back byte-exact and deleted it."
        )

    def check_conditional_writes(self) -> Check:
        key = self.probe_key()
        try:
            self.store.put_bytes(key, b"first", mode="create")
            try:
                self.store.put_bytes(key, b"second", mode="create")
            except Conflict:
                return Check(
                    "conditional-writes",
                    PASS,
                    "A second create-only write (If-None-Match: *) of the same "
                    "key was refused, so only one of two writers can commit a version.",
                )
            return Check(
                "conditional-writes",
                FAIL,
                "The store accepted a second create-only write of the same key: "
                "it ignores If-None-Match: *, so two people committing the same version at once could "
                "both succeed and one commit would be lost.",
                self.fixes.fix_for("conditional-writes", "no-conditional-writes"),
                reason="no-conditional-writes",
            )
        except StoreError as err:
            if err.reason in ("invalid-request", "not-implemented", "store-error"):
                return Check(
                    "conditional-writes",
                    FAIL,
                    f"The store refused a create-only write (If-None-Match: *): {err.message}",
                    self.fixes.fix_for("conditional-writes", "no-conditional-writes"),
                    reason="no-conditional-writes",
                )
            raise
        finally:
            self.remove_probe(key)

    # -- generated URLs --------------------------------------------------------------------------------------
    def check_generated_urls(self) -> Check:
        try:
            self.s3_store.client_for("sts").get_federation_token(Name="gradient-doctor", DurationSeconds=900)
        except Exception as exc:
            err = self.translate(exc, "get_federation_token")
            if err.reason == "access-denied":
                return Check(
                    "generated-urls",
                    WARN,
                    "sts:GetFederationToken is denied for these credentials, so no "
                    "short-lived credentials can be handed to browsers. Saving and loading do not need it: "
                    "gradient-jupyter signs URLs with the access key itself.",
                    self.fixes.fix_for("generated-urls", "access-denied"),
                    reason=err.reason,
                )
            if self.provider.endpoint:  # not AWS: an error here means "no STS", not an outage to wait out
                return Check(
                    "generated-urls",
                    WARN,
                    "This store has no STS (sts:GetFederationToken is not "
                    f"answered at {self.provider.endpoint}), like most S3-compatible stores (MinIO, R2, "
                    "Ceph, SeaweedFS). Saving and loading do not need it: gradient-jupyter signs URLs with "
                    "the access key itself.",
                    "Nothing to do.",
                    reason="no-sts",
                )
            return Check(
                "generated-urls",
                WARN,
                f"sts:GetFederationToken did not work ({err.message}). Saving and "
                "loading do not need it: gradient-jupyter signs URLs with the access key itself.",
                "Nothing to do unless you need federation tokens.",
                reason=err.reason,
            )
        return Check(
            "generated-urls",
            PASS,
            "sts:GetFederationToken is allowed: short-lived credentials can be generated for browsers.",
        )
