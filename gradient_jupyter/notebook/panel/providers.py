"""The providers tab: the list with the managed quota, add / edit / delete, and the bucket-setup check."""

from __future__ import annotations

from threading import Lock, Thread

import ipywidgets as W

from ...commands.providers import jupyter_server_origins, providers_table
from ...engine import GradientError, doctor
from ...engine.formatting import human_bytes
from ...engine.ids import check_provider_name
from ...engine.providers import Provider, clean_config
from ...output import ReportView
from . import words
from .parts import (
    LABELS,
    Confirm,
    SecretField,
    button,
    csv_words,
    done,
    dropdown,
    heading,
    note,
    plain_words,
    result,
    row,
    table,
    text,
    unreachable,
    wide,
)

# Which form field an engine refusal is about (its `reason`), so the panel can point at it.
FIELD_OF_REASON = {
    "invalid-provider-name": "name",
    "duplicate-name": "name",
    "invalid-bucket-name": "bucket",
    "invalid-endpoint": "endpoint",
    "invalid-region": "region",
    "empty-secret": "secretAccessKey",
    "profile-and-keys": "profile",
    "invalid-signature-version": "signatureVersion",
}
# The checks that say a provider cannot be used at all ("Add and check" keeps it only when they pass).
ESSENTIAL = ("credentials", "bucket", "list", "read-write")
# The doctor's fixes in the words of this tab's form and buttons.
FORM = doctor.Form(
    labels={key: label for key, (label, _) in words.FIELDS.items()},
    edit=words.EDIT,
    check=words.CHECK,
    apply_cors=words.APPLY_CORS,
    origins=words.ORIGINS[0],
)


def option(p) -> str:
    """A provider as the list of providers names it: a team provider as the team's."""
    return (words.TEAM_OPTION if p.source == "team" else words.PROVIDER_OPTION).format(name=p.name)


def not_kept(check, provider) -> str:
    """Why "Add and check" added nothing: the first essential check that failed, in words about what it met."""
    where = provider.endpoint or "AWS S3"
    wording = words.NOT_KEPT.get(check.reason, words.NOT_KEPT["other"])
    return wording.format(check=check.id, endpoint=where, bucket=provider.bucket)


class ProvidersTab:
    def __init__(self, panel):
        self.panel = panel
        self.engine = panel.engine
        self.providers = []
        self.usage: dict = {"storageProviders": [], "managed": {}}
        self._lock = Lock()
        self.editing = None  # the provider the form edits, or None when it adds
        self.want = None  # a provider to choose once the list shows it (one just added)
        self.team_note = ""  # what the provider's line says of a team provider chosen

        quota = self._usage_widgets()
        self._provider_widgets()
        self._check_widgets()
        self.box = W.VBox(
            [
                self.table,
                self.problems,
                quota,
                self.choice,
                row(self.edit_button, self.delete_button, self.default_button, self.check_button, self.cors_button),
                self.origins,
                self.provider_result,
                self.confirm.box,  # under the refusal that tells of it
                self.check_result,
                self.report,
                *self._form_widgets(),
            ]
        )
        self.stop_edit()
        self._chosen()

    def _usage_widgets(self) -> W.HBox:
        """The providers table, what is wrong with them, and the quota bar (returned, as shown)."""
        self.table = wide("gj-providers")
        self.problems = W.HTML()
        self.problems.add_class("gj-provider-problems")
        self.quota = W.FloatProgress(
            min=0.0,
            max=1.0,
            value=0.0,
            description=words.QUOTA,
            style=LABELS,
            layout={"width": "100%", "max_width": "30em"},
        )
        self.quota_label = W.Label()
        quota = W.HBox([self.quota, self.quota_label], layout={"flex_flow": "row wrap"})
        quota.add_class("gj-quota")
        return quota

    def _provider_widgets(self) -> None:
        """One provider: edit, delete, make the team default."""
        self.choice = dropdown(words.PROVIDER, "gj-provider")
        self.choice.observe(lambda _: self._chosen(), "value")
        self.edit_button = button(words.EDIT, "gj-edit-button")
        self.edit_button.on_click(lambda _: self.start_edit())
        self.delete_button = button(words.DELETE_PROVIDER, "gj-delete-provider-button")
        self.delete_button.on_click(lambda _: self.ask_delete())
        self.default_button = button(words.MAKE_DEFAULT, "gj-default-button")
        self.default_button.tooltip = words.MAKE_DEFAULT_HINT
        self.default_button.on_click(lambda _: self.make_default())
        self.confirm = Confirm("gj-confirm-provider")
        self.provider_result = result("gj-provider-result")

    def _check_widgets(self) -> None:
        """The bucket check and its CORS fix."""
        self.origins = text(*words.ORIGINS, "gj-origins")
        self.check_button = button(words.CHECK, "gj-check-button")
        self.check_button.on_click(lambda _: self.check())
        self.cors_button = button(words.APPLY_CORS, "gj-cors-button", "warning")
        self.cors_button.on_click(lambda _: self.check(fix=True))
        self.check_result = result("gj-check-result")
        self.report = wide("gj-report")

    def _form_widgets(self) -> list:
        """The add or edit form; returns its lines, in the order shown."""
        self.form_heading = heading(words.ADD_HEADING)
        self.fields = {  # in the order of words.FIELDS: the secret right under its access key
            key: SecretField(label, hint, "gj-add-secret")
            if key == "secretAccessKey"
            else text(label, hint, f"gj-add-{key}")
            for key, (label, hint) in words.FIELDS.items()
        }
        self.field_hints = {key: W.HTML(layout={"display": "none", "margin": "0 0 0 8.5em"}) for key in self.fields}
        for key, hint in self.field_hints.items():
            hint.add_class(f"gj-hint-{key}")
        self.secret = self.fields["secretAccessKey"]
        self.add_button = button(words.ADD, "gj-add-button")
        self.add_button.on_click(lambda _: self.add(check=False))
        self.add_check_button = button(words.ADD_AND_CHECK, "gj-add-check-button", "primary")
        self.add_check_button.on_click(lambda _: self.add(check=True))
        self.save_button = button(words.SAVE_EDIT, "gj-save-edit-button", "primary")
        self.save_button.on_click(lambda _: self.save_edit())
        self.cancel_button = button(words.CANCEL, "gj-cancel-edit-button")
        self.cancel_button.on_click(lambda _: self.stop_edit())
        self.form_result = result("gj-form-result")
        self.form_report = wide("gj-form-report")
        form = []
        for key, field in self.fields.items():
            form += [field, self.field_hints[key]]
        form.insert(form.index(self.field_hints["secretAccessKey"]) + 1, self.secret.hint)
        return [
            self.form_heading,
            *form,
            row(self.add_check_button, self.add_button, self.save_button, self.cancel_button),
            self.form_result,
            self.form_report,
        ]

    # -- showing (any thread) ----------------------------------------------------------------------------------
    def show(self, providers) -> None:
        """The providers as read now, with the last usage read (engine.utilization: the slowest reading)."""
        with self._lock:  # the lists and the usage are read in two threads: each table shows both as they are now
            self.providers = providers
            self._show_table()
        keep = self.choice.value
        self.choice.options = [(option(p), p.id) for p in providers]
        ids = [p.id for p in providers]
        if self.want in ids:
            keep, self.want = self.want, None
        self.choice.value = keep if keep in ids else (ids[0] if ids else None)
        if self.editing is not None and self.editing.id not in ids:
            self.stop_edit()
        chosen = self.chosen()  # the team default may have moved (here, or in the console)
        self.default_button.disabled = self._default_fixed(chosen)

    def show_usage(self, usage: dict) -> None:
        with self._lock:
            self.usage = usage
            self._show_table()

    def _show_table(self) -> None:
        providers = self.providers
        self.table.value = table(
            providers_table(providers, self.usage), "gj-providers-table", hover={"Name": "ID", "State": "Problem"}
        )
        # The reason a bucket cannot be read, in words under the table (the State column has it on hover).
        self.problems.value = unreachable(self.usage, words.UNREACHABLE)
        managed = self.usage.get("managed") or {}
        if managed.get("quotaBytes") and managed.get("usedBytes") is not None:
            used, quota = managed["usedBytes"], managed["quotaBytes"]
            self.quota.value = min(1.0, used / quota)
            self.quota.bar_style = "danger" if used >= quota * 0.9 else "info"
            self.quota_label.value = words.QUOTA_USED.format(
                used=human_bytes(used), quota=human_bytes(quota), percent=100 * used / quota
            )

    def chosen(self):
        return next((p for p in self.providers if p.id == self.choice.value), None)

    def _chosen(self) -> None:
        p = self.chosen()
        built_in = p is None or p.is_gradient_managed or not p.editable
        self.edit_button.disabled = built_in
        self.delete_button.disabled = built_in
        # a team provider is the administrator's (its file): no edit or delete buttons at all, not greyed ones
        shown = "none" if p is not None and not p.editable else None
        self.edit_button.layout.display = self.delete_button.layout.display = shown
        # ...and says why, next to where they would be; gone when another provider is chosen
        if p is not None and p.source == "team":
            said = words.TEAM_PROVIDER.format(name=p.name, file=p.team_file)
            self.team_note = note(said + (words.TEAM_READ_ONLY if p.read_only else ""))
            self.provider_result.value = self.team_note
        elif self.team_note and self.provider_result.value == self.team_note:
            self.provider_result.value = self.team_note = ""
        self.default_button.disabled = self._default_fixed(p)
        self.cors_button.layout.display = "none"
        self.report.value = ""
        self.check_result.value = ""
        self.confirm.close()

    # -- add and edit --------------------------------------------------------------------------------------------
    def _form_config(self, secret: str) -> dict:
        config = {k: self.fields[k].value.strip() for k in ("bucket", "endpoint", "region")}
        access_key, profile = self.fields["accessKey"].value.strip(), self.fields["profile"].value.strip()
        signature = self.fields["signatureVersion"].value.strip()
        if signature or (self.editing is not None and signature != (self.editing.config.get("signatureVersion") or "")):
            config["signatureVersion"] = signature
        if self.editing is None:
            if access_key or secret:
                config.update(accessKey=access_key, secretAccessKey=secret)
            if profile:
                config["profile"] = profile
        else:
            if access_key and access_key != (self.editing.config.get("accessKey") or ""):
                config["accessKey"] = access_key
            if secret:
                config.update(accessKey=access_key, secretAccessKey=secret)
            # Sent when changed (empty: no profile any more), and with new keys, so a form showing both is refused.
            if profile != (self.editing.config.get("profile") or "") or (profile and "accessKey" in config):
                config["profile"] = profile
        return config

    def _clear_hints(self) -> None:
        for hint in self.field_hints.values():
            hint.value, hint.layout.display = "", "none"

    def _point_at(self, exc: Exception) -> None:
        key = FIELD_OF_REASON.get(getattr(exc, "reason", ""))
        if key and isinstance(exc, GradientError):
            hint = self.field_hints[key]
            hint.value, hint.layout.display = note(f"{words.FIELD_WRONG}: {plain_words(exc)}", "error"), None

    def add(self, *, check: bool) -> Thread | None:
        """Create the provider from the form; with `check`, only once its bucket answers as it should."""
        name, secret = self.fields["name"].value.strip(), self.secret.take()
        config = self._form_config(secret)
        del secret
        self._clear_hints()
        self.form_report.value = ""

        def work():
            try:
                if check:
                    # The doctor checks the provider as it would be, before the registry (and every panel) has it.
                    candidate = Provider(
                        id=words.NOT_ADDED_ID, name=check_provider_name(name), config=clean_config(config)
                    )
                    report = doctor.check(self.engine, candidate, origins=self._origins(), form=FORM)
                    self.form_report.value = ReportView(report)._repr_html_()
                    failed = [c for c in report.checks if c.id in ESSENTIAL and c.status == "fail"]
                    if failed:
                        return note(not_kept(failed[0], candidate), "error")
                provider = self.engine.registry.create(name, config)
                self.form_report.value = ""  # it answers: Check setup tells the rest (CORS) for the provider added
            finally:
                config.clear()
            for key in ("name", "bucket", "endpoint", "region", "accessKey", "profile", "signatureVersion"):
                self.fields[key].value = ""
            self.want = provider.id
            added = (words.ADDED_CHECKED if check else words.ADDED).format(name=provider.name, id=provider.id)
            warnings = [] if check else [words.NOT_CHECKED]
            warning = self.engine.registry.bucket_warning(provider, words.DELETE_ONE)  # the console prints it too
            return done(added, [*warnings, *([warning.removeprefix("Warning: ")] if warning else [])])

        busy = words.ADD_CHECKING if check else words.ADDING
        return self.panel.run(
            self.form_result,
            busy.format(name=name),
            work,
            [self.add_button, self.add_check_button],
            on_error=self._point_at,
            usage=True,
        )

    def _default_fixed(self, p) -> bool:
        """No "make default" for the default itself, a team provider, or when the team file sets the default."""
        return p is None or p.is_team_default or not p.editable or self.engine.registry.default_fixed

    def start_edit(self) -> None:
        p = self.chosen()
        if p is None or p.is_gradient_managed or not p.editable:
            return
        self.editing = p
        c = p.public_config()
        for key in ("bucket", "endpoint", "region", "accessKey", "profile", "signatureVersion"):
            self.fields[key].value = c.get(key) or ""
        self.fields["name"].value = p.name
        self.secret.take()
        self.secret.placeholder = words.EDIT_PLACEHOLDERS["secretAccessKey"]
        self.form_heading.value = f"<b>{note(words.EDIT_HEADING.format(name=p.name))}</b>"
        self._form_mode(editing=True)

    def stop_edit(self) -> None:
        if self.editing is not None:
            for field in self.fields.values():
                field.value = ""
        self.editing = None
        self.secret.take()
        self.secret.placeholder = words.FIELDS["secretAccessKey"][1]
        self.form_heading.value = f"<b>{note(words.ADD_HEADING)}</b>"
        self._clear_hints()
        self._form_mode(editing=False)

    def _form_mode(self, *, editing: bool) -> None:
        for b in (self.add_button, self.add_check_button):
            b.layout.display = "none" if editing else None
        for b in (self.save_button, self.cancel_button):
            b.layout.display = None if editing else "none"

    def save_edit(self) -> Thread | None:
        p, name, secret = self.editing, self.fields["name"].value.strip(), self.secret.take()
        if p is None:
            return None
        config = self._form_config(secret)
        del secret
        self._clear_hints()

        def work():
            try:
                updated = self.engine.registry.update(p.id, name=name if name != p.name else None, config=config)
            finally:
                config.clear()
            self.stop_edit()
            warning = (
                self.engine.registry.bucket_warning(updated, words.DELETE_ONE)
                if "bucket" in config or "endpoint" in config
                else None
            )
            return note(words.EDITED.format(name=updated.name), "ok") + (
                "<br>" + note(warning, "error") if warning else ""
            )

        return self.panel.run(
            self.form_result,
            words.SAVING_EDIT.format(name=p.name),
            work,
            [self.save_button, self.cancel_button],
            on_error=self._point_at,
            usage=True,
        )

    # -- delete ----------------------------------------------------------------------------------------------
    def ask_delete(self) -> None:
        p = self.chosen()
        if p is None:
            return
        self.confirm.ask(
            words.CONFIRM_DELETE_PROVIDER.format(name=p.name), words.DELETE_PROVIDER, lambda: self.delete(p)
        )

    def delete(self, p, *, force: bool = False) -> Thread | None:
        def work():
            self.engine.delete_provider(p.id, force=force)
            return note(words.DELETED_PROVIDER.format(name=p.name), "ok")

        def refused(exc):
            # Datasets use it, or its bucket cannot be read to tell: the engine's words say which; ask again.
            if getattr(exc, "reason", "") in ("provider-in-use", "provider-unchecked"):
                self.confirm.ask(
                    words.CONFIRM_FORCE_DELETE_PROVIDER.format(name=p.name),
                    words.FORCE_DELETE_PROVIDER,
                    lambda: self.delete(p, force=True),
                )

        return self.panel.run(
            self.provider_result,
            words.DELETING_PROVIDER.format(name=p.name),
            work,
            [self.delete_button, self.edit_button],
            on_error=refused,
            usage=True,
            known=lambda exc: {"name": p.name},
        )

    # -- the team default ------------------------------------------------------------------------------------------
    def make_default(self) -> Thread | None:
        """Make the chosen provider the team default, as `storageProviders update s3 --id ID --isTeamDefault` does."""
        p = self.chosen()
        if p is None or p.is_team_default:
            return None

        def work():
            self.engine.registry.update(p.id, is_team_default=True)
            return note(words.MADE_DEFAULT.format(name=p.name), "ok")

        return self.panel.run(
            self.provider_result,
            words.MAKING_DEFAULT.format(name=p.name),
            work,
            [self.default_button],
            known=lambda exc: {"name": p.name},
        )

    # -- the bucket check ------------------------------------------------------------------------------------------
    def _origins(self) -> list[str]:
        # Like `storageProviders check` without --origin: the Jupyter servers of this machine are what browsers use.
        return csv_words(self.origins.value) or jupyter_server_origins()

    def check(self, *, fix: bool = False) -> Thread | None:
        """Run the bucket doctor on the chosen provider (after applying the CORS rules, with `fix`)."""
        p = self.chosen()
        if p is None:
            return None
        origins = self._origins()
        self.report.value = ""
        self.cors_button.layout.display = "none"

        def work():
            if fix:
                report = doctor.apply_cors(self.engine, p, origins, form=FORM)
            else:
                report = doctor.check(self.engine, p, origins=origins, form=FORM)
            self.report.value = f"<div class='gj-scroll-y'>{ReportView(report)._repr_html_()}</div>"
            checks = report.to_json()["checks"]
            fixable = any(c["id"] in ("cors", "preflight") and c["status"] == "fail" for c in checks)
            self.cors_button.layout.display = None if fixable else "none"
            failed = sum(c["status"] == "fail" for c in checks)
            summary = words.CHECK_FAILED.format(count=failed) if failed else words.CHECK_OK
            return note(words.CHECKED.format(name=p.name, summary=summary), "error" if failed else "ok")

        busy = words.APPLYING_CORS if fix else words.CHECKING
        return self.panel.run(self.check_result, busy.format(name=p.name), work, [self.check_button, self.cors_button])
