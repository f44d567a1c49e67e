"""The ipywidgets panel (SPEC section 8): a door onto the engine, like the magic and the REST API.

Every action is one engine call made in a worker thread, so the kernel stays free while a bucket answers;
ipywidgets 8 sends widget updates from any thread. Errors show in the panel as the engine words them.
"""
from __future__ import annotations

import html
import threading
from collections.abc import Callable

import ipywidgets as W

from ..cli import failure
from ..engine import Engine, GradientError
from ..engine.models import ProgressEvent
from ..engine.stores import human_bytes
from ..output import Table
from ..progress import PHASES

WIDE = {"width": "34em"}
LABELS = {"description_width": "8em"}
COLORS = {"info": "inherit", "busy": "var(--jp-ui-font-color2, #616161)",
          "ok": "var(--jp-success-color1, #388e3c)", "error": "var(--jp-error-color1, #d32f2f)"}


def panel(engine: Engine | None = None) -> W.Widget:
    """The storage panel for `engine` (default: the one the magic and the Python API use in this kernel)."""
    from ..api import default_engine

    try:
        engine = engine or default_engine()
    except GradientError as exc:
        return W.HTML(note(exc.message, "error"))
    return Panel(engine)


def note(text: str, kind: str = "info") -> str:
    """A status line as HTML; `kind` is info, busy, ok or error (also its CSS class, gj-<kind>)."""
    return f"<span class='gj-{kind}' style='color:{COLORS[kind]}'>{html.escape(text)}</span>"


def plain_words(exc: BaseException) -> str:
    """What to tell the user about an error: the engine's message, never a traceback."""
    if isinstance(exc, (GradientError, OSError)):
        return failure(exc)
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def text(description: str, placeholder: str = "", css: str = "", cls=W.Text) -> W.Text:
    # continuous_update=False: the value is sent once, on blur, before the click of the button that uses it.
    widget = cls(description=description, placeholder=placeholder, continuous_update=False, layout=WIDE,
                 style=LABELS)
    if css:
        widget.add_class(css)
    return widget


def button(description: str, css: str, style: str = "") -> W.Button:
    widget = W.Button(description=description, button_style=style, layout={"width": "fit-content"})
    widget.add_class(css)
    return widget


def table_html(table: Table) -> str:
    # Widget HTML is not styled like notebook output: give the columns room.
    return table._repr_html_().replace("<table>", "<table style='border-spacing:1em 0.15em; margin-left:-1em'>")


def csv_words(value: str) -> list[str]:
    return [w.strip() for w in value.split(",") if w.strip()]


class Panel(W.VBox):
    """Two tabs, storage providers and datasets. One piece of work runs at a time; its buttons wait."""

    def __init__(self, engine: Engine):
        super().__init__()
        self.engine = engine
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._buttons: list[W.Button] = []
        self.providers = ProvidersTab(self)
        self.datasets = DatasetsTab(self)
        self.tabs = W.Tab(children=[self.providers.box, self.datasets.box], titles=["Storage providers", "Datasets"])
        self.refresh_button = button("Refresh", "gj-refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.buttons(self.refresh_button)
        title = W.HTML("<b>Gradient storage</b> &middot; team " + html.escape(engine.team_id))
        title.layout.margin = "0 1em 0 0"
        self.children = [W.HBox([title, self.refresh_button], layout={"align_items": "center"}),
                         self.tabs]
        self.add_class("gj-panel")
        self.refresh()

    def __repr__(self) -> str:  # the text/plain a notebook keeps next to the widget
        return "<Gradient storage panel: storage providers and datasets>"

    def refresh(self) -> None:
        """Reload providers, usage and datasets from the engine (in a thread)."""

        def work():
            self.providers.show(self.providers.fetch())
            try:
                self.datasets.show(self.datasets.fetch())
            except Exception as exc:  # the providers tab stays useful when datasets cannot be read
                self.datasets.status.value = note(plain_words(exc), "error")

        self.run(self.providers.status, "Loading storage providers and datasets...", work)

    def run(self, status: W.HTML, title: str, work: Callable[[], str | None],
            on_error: Callable[[Exception], None] | None = None) -> bool:
        """Run `work()` in a thread (it updates the widgets itself and may return a final status line as HTML).

        An error is shown in `status` in plain words. Returns False, doing nothing, while other work runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                status.value = note("Wait: the panel is still working on the last action.", "busy")
                return False
            status.value = note(title, "busy")
            self._thread = threading.Thread(target=self._work, args=(status, work, on_error),
                                            name="gradient-panel", daemon=True)
            self._set_busy(True)
            self._thread.start()
        return True

    def _work(self, status, work, on_error) -> None:
        try:
            status.value = work() or ""
        except Exception as exc:  # the panel is a door: every failure becomes words in it
            status.value = note(plain_words(exc), "error")
            if on_error is not None:
                on_error(exc)
        finally:
            self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        for b in self._buttons:
            b.disabled = busy

    def wait(self, timeout: float | None = None) -> None:
        """Block until the panel's current work (if any) has finished; for scripts and tests."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def buttons(self, *widgets: W.Button) -> None:
        self._buttons += widgets


class ProgressBar:
    """A bar and a line of text fed by the engine's ProgressEvents (from its worker threads)."""

    def __init__(self, css: str):
        self.bar = W.FloatProgress(min=0.0, max=1.0, value=0.0, description="", style=LABELS, layout=WIDE)
        self.label = W.Label()
        self.box = W.HBox([self.bar, self.label], layout={"display": "none"})
        self.box.add_class(css)
        self._last = None
        self._lock = threading.Lock()

    def start(self, what: str) -> None:
        self._last = None
        self.bar.value, self.bar.bar_style, self.bar.description = 0.0, "info", PHASES.get(what, what)
        self.label.value = ""
        self.box.layout.display = None

    def __call__(self, event: ProgressEvent) -> None:
        if event.bytes_total:
            fraction = event.bytes_done / event.bytes_total
        else:
            fraction = event.files_done / event.files_total if event.files_total else 1.0
        step = (event.phase, int(fraction * 100), event.files_done == event.files_total)
        with self._lock:  # one widget update per percent, not one per chunk
            if step == self._last:
                return
            self._last = step
            self.bar.value = min(1.0, fraction)
            self.bar.description = PHASES.get(event.phase, event.phase)
            self.label.value = (f"{event.files_done}/{event.files_total} files, {human_bytes(event.bytes_done)} "
                                f"of {human_bytes(event.bytes_total)}")

    def finish(self, ok: bool) -> None:
        if ok:
            self.bar.value = 1.0
        self.bar.bar_style = "success" if ok else "danger"


# --------------------------------------------------------------------------------------------------------------
class ProvidersTab:
    """The provider list with the managed quota, the add-S3 form, and the bucket-setup check."""

    def __init__(self, panel: Panel):
        self.panel = panel
        self.engine = panel.engine
        self.table = W.HTML()
        self.table.add_class("gj-providers")
        self.quota = W.FloatProgress(min=0.0, max=1.0, value=0.0, description="Managed quota", style=LABELS,
                                     layout=WIDE)
        self.quota_label = W.Label()
        quota = W.HBox([self.quota, self.quota_label])
        quota.add_class("gj-quota")

        self.name = text("Name", "e.g. my-minio", "gj-add-name")
        self.bucket = text("Bucket", "e.g. my-bucket", "gj-add-bucket")
        self.endpoint = text("Endpoint", "empty for AWS, e.g. http://127.0.0.1:9000", "gj-add-endpoint")
        self.region = text("Region", "e.g. us-east-1", "gj-add-region")
        self.access_key = text("Access key", "empty: boto3's credential chain", "gj-add-access-key")
        self.secret = text("Secret key", "cleared as soon as you add", "gj-add-secret", cls=W.Password)
        self.add_button = button("Add storage provider", "gj-add-button", "primary")
        self.add_button.on_click(self.add)

        self.choice = W.Dropdown(description="Provider", style=LABELS, layout=WIDE)
        self.choice.add_class("gj-check-provider")
        self.origins = text("Origins", "comma-separated (default: this machine's Jupyter servers)", "gj-origins")
        self.check_button = button("Check setup", "gj-check-button")
        self.check_button.on_click(self.check)
        self.cors_button = button("Apply CORS fix", "gj-cors-button", "warning")
        self.cors_button.layout.display = "none"
        self.cors_button.on_click(self.apply_cors)
        self.report = W.HTML()
        self.report.add_class("gj-report")
        self.status = W.HTML()
        self.status.add_class("gj-providers-status")
        panel.buttons(self.add_button, self.check_button, self.cors_button)

        self.box = W.VBox([
            self.table, quota,
            W.HTML("<b>Add an S3-compatible storage provider</b>"),
            self.name, self.bucket, self.endpoint, self.region, self.access_key, self.secret, self.add_button,
            W.HTML("<b>Check a bucket's setup</b>"),
            self.choice, self.origins, W.HBox([self.check_button, self.cors_button]), self.report,
            self.status,
        ])

    # -- reading (in the worker thread) ---------------------------------------------------------------------
    def fetch(self) -> tuple:
        return self.engine.registry.list(), self.engine.utilization()

    def show(self, data: tuple) -> None:
        providers, usage = data
        used = {row["id"]: row for row in usage["storageProviders"]}
        rows = []
        for p in providers:
            row = used.get(p.id, {})
            size = "unreachable" if row.get("error") else human_bytes(row.get("usedBytes") or 0)
            rows.append([p.name, p.id, p.bucket or "", p.endpoint or ("embedded" if p.embedded else "AWS"),
                         "yes" if p.is_team_default else "", size])
        self.table.value = table_html(Table(["Name", "ID", "Bucket", "Endpoint", "Default", "Used"], rows,
                                            title="Storage providers"))
        managed = usage.get("managed") or {}
        if managed.get("quotaBytes"):
            used_bytes, quota = managed.get("usedBytes") or 0, managed["quotaBytes"]
            self.quota.value = min(1.0, used_bytes / quota)
            self.quota.bar_style = "danger" if used_bytes >= quota * 0.9 else "info"
            self.quota_label.value = (f"{human_bytes(used_bytes)} used of {human_bytes(quota)} "
                                      f"({100 * used_bytes / quota:.1f}%)")
        self.panel.datasets.show_providers(providers)
        keep = self.choice.value
        self.choice.options = [(f"{p.name} ({p.id})", p.id) for p in providers]
        self.choice.value = keep if keep in {p.id for p in providers} else providers[0].id

    # -- actions --------------------------------------------------------------------------------------------
    def add(self, _=None) -> None:
        """Create the provider from the form. The secret is taken out of the Password widget at once."""
        name, secret = self.name.value, self.secret.value
        self.secret.value = ""  # before anything else: a secret must not stay in widget state or a saved notebook
        config = {"bucket": self.bucket.value, "endpoint": self.endpoint.value, "region": self.region.value}
        if self.access_key.value or secret:
            config.update(accessKey=self.access_key.value, secretAccessKey=secret)
        del secret

        def work():
            try:
                provider = self.engine.registry.create(name, config)
            finally:
                config.clear()
            self.show(self.fetch())
            self.choice.value = provider.id
            for field in (self.name, self.bucket, self.endpoint, self.region, self.access_key):
                field.value = ""
            return note(f"Created storage provider: {provider.id}", "ok")

        self.panel.run(self.status, f"Adding storage provider {name!r}...", work)

    def _origins(self) -> list[str]:
        from ..commands.providers import jupyter_server_origins

        # Like `storageProviders check` without --origin: the Jupyter servers of this machine are what browsers use.
        return csv_words(self.origins.value) or jupyter_server_origins()

    def check(self, _=None) -> None:
        """Run the bucket doctor on the chosen provider and show its report."""
        from ..engine import doctor

        provider, origins = self.choice.value, self._origins()
        self.panel.run(self.status, "Checking the bucket's setup...",
                       lambda: self.show_report(doctor.check(self.engine, provider, origins=origins)))

    def apply_cors(self, _=None) -> None:
        """Apply the CORS rules the doctor recommends: the only change the panel makes in a bucket."""
        from ..engine import doctor

        provider, origins = self.choice.value, self._origins()
        self.panel.run(self.status, "Applying the CORS rules...",
                       lambda: self.show_report(doctor.apply_cors(self.engine, provider, origins=origins)))

    def show_report(self, report) -> None:
        self.report.value = report._repr_html_()
        checks = report.to_json()["checks"]
        fixable = any(c["id"] in ("cors", "preflight") and c["status"] == "fail" for c in checks)
        self.cors_button.layout.display = None if fixable else "none"


# --------------------------------------------------------------------------------------------------------------
class DatasetsTab:
    """The dataset list, one dataset's versions, save a folder as a new version, load a version into a folder."""

    def __init__(self, panel: Panel):
        self.panel = panel
        self.engine = panel.engine
        self._quiet = False  # set while the panel itself changes the selection
        self.table = W.HTML()
        self.table.add_class("gj-datasets")
        self.choice = W.Dropdown(description="Dataset", style=LABELS, layout=WIDE)
        self.choice.add_class("gj-dataset")
        self.choice.observe(self._chosen, "value")
        self.versions = W.HTML()
        self.versions.add_class("gj-versions")

        self.folder = text("Folder", "folder to save, e.g. ./data", "gj-save-folder")
        self.name = text("Dataset", "existing or new dataset name", "gj-save-name", cls=W.Combobox)
        self.message = text("Message", "what changed", "gj-save-message")
        self.tag = text("Tag", "optional, e.g. v1", "gj-save-tag")
        self.provider = W.Dropdown(description="Provider", style=LABELS, layout=WIDE)
        self.provider.add_class("gj-save-provider")
        self.save_button = button("Save folder as new version", "gj-save-button", "primary")
        self.save_button.on_click(self.save)
        self.save_progress = ProgressBar("gj-save-progress")

        self.version = W.Dropdown(description="Version", style=LABELS, layout=WIDE)
        self.version.add_class("gj-load-version")
        self.dest = text("Into folder", "default: ./<dataset name>", "gj-load-dest")
        self.load_button = button("Load version into folder", "gj-load-button", "primary")
        self.load_button.on_click(self.load)
        self.load_progress = ProgressBar("gj-load-progress")
        self.status = W.HTML()
        self.status.add_class("gj-datasets-status")
        panel.buttons(self.save_button, self.load_button)

        self.box = W.VBox([
            self.table, self.choice, self.versions,
            W.HTML("<b>Save a folder as a new version</b> (the dataset is created if new)"),
            self.folder, self.name, self.message, self.tag, self.provider, self.save_button, self.save_progress.box,
            W.HTML("<b>Load a version into a folder</b>"),
            self.version, self.dest, self.load_button, self.load_progress.box,
            self.status,
        ])

    # -- reading (in the worker thread) ---------------------------------------------------------------------
    def fetch(self, selected: str | None = None) -> tuple:
        """Datasets, providers, the chosen dataset (kept if it still exists) and its committed versions."""
        datasets = self.engine.datasets.list()
        providers = self.engine.registry.list()
        ids = [d.id for d in datasets]
        selected = selected or self.choice.value
        if selected not in ids:
            selected = ids[0] if ids else None
        versions = self.engine.datasets.list_versions(selected) if selected else []
        return datasets, providers, selected, versions

    def show(self, data: tuple) -> None:
        datasets, providers, selected, versions = data
        names = {p.id: p.name for p in providers}
        self.table.value = table_html(Table(
            ["Name", "ID", "Provider", "Description"],
            [[d.name, d.id, names.get(d.storage_provider_id, d.storage_provider_id), d.description] for d in datasets],
            title="Datasets", empty="(none yet: save a folder below)"))
        self._quiet = True
        try:
            self.choice.options = [(d.name, d.id) for d in datasets]
            self.choice.value = selected
            self.name.options = tuple(d.name for d in datasets)
        finally:
            self._quiet = False
        self.show_providers(providers)
        chosen = next((d for d in datasets if d.id == selected), None)
        self.show_versions(chosen, versions)

    def show_providers(self, providers) -> None:
        """The choices of where a new dataset lives (the providers tab calls this too, after an add)."""
        keep = self.provider.value
        self.provider.options = [("the dataset's own, or the team default", "")] + [
            (f"{p.name}{' (team default)' if p.is_team_default else ''}", p.id) for p in providers]
        self.provider.value = keep if keep in {p.id for p in providers} else ""

    def show_versions(self, dataset, versions) -> None:
        if dataset is None:
            self.versions.value = ""
            self.version.options = []
            return
        rows = [[v.version, ", ".join(v.tags), v.file_count, human_bytes(v.size), (v.dt_committed or "")[:19],
                 v.message] for v in versions]
        self.versions.value = table_html(Table(["Version", "Tags", "Files", "Size", "Committed", "Message"], rows,
                                               title=f"Versions of {dataset.name}", empty="(no committed version)"))
        self.version.options = [(f"{v.version}{' (' + ', '.join(v.tags) + ')' if v.tags else ''}",
                                 f"{dataset.id}:{v.version}") for v in versions]
        self.version.value = self.version.options[0][1] if versions else None
        if not self.name.value:
            self.name.value = dataset.name

    def _chosen(self, change) -> None:
        if self._quiet or not change["new"]:
            return
        self.panel.run(self.status, "Loading versions...", lambda: self.show(self.fetch(change["new"])))

    # -- actions --------------------------------------------------------------------------------------------
    def save(self, _=None) -> None:
        """Save the folder as a new committed version of the named dataset (created if new)."""
        from ..engine import transfer

        folder, name, provider = self.folder.value.strip(), self.name.value.strip(), self.provider.value or None
        message, tag = self.message.value, self.tag.value.strip() or None
        progress = self.save_progress

        def work():
            progress.start("hash")
            summary = transfer.save(self.engine, name, folder, message=message, provider=provider, tag=tag,
                                    progress=progress)
            progress.finish(True)
            self.show(self.fetch(summary.dataset.id))
            return note(f"Saved {summary.version.ref}: {summary.line()}", "ok")

        self.panel.run(self.status, f"Saving {folder} as a new version of {name}...", work,
                       on_error=lambda exc: progress.finish(False))

    def load(self, _=None) -> None:
        """Load the chosen version into the folder (default ./<dataset name>)."""
        from ..engine import transfer

        ref, dest = self.version.value, self.dest.value.strip() or None
        if not ref:
            self.status.value = note("Choose a dataset and a version to load first.", "error")
            return
        progress = self.load_progress

        def work():
            progress.start("verify")
            summary = transfer.load(self.engine, ref, dest, progress=progress)
            progress.finish(True)
            return note(f"Loaded {summary.version.ref} into {summary.destination}: {summary.line()}", "ok")

        self.panel.run(self.status, f"Loading {ref}...", work, on_error=lambda exc: progress.finish(False))
