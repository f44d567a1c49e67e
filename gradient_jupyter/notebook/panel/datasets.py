"""The datasets tab: the list, a dataset's versions, a version's files and tags, save, load, delete."""

from __future__ import annotations

import html
import threading
from threading import Thread

import ipywidgets as W

from ...commands.dataset_files import folder, folder_rows
from ...commands.datasets import datasets_table, versions_table
from ...commands.mounts import mount_message
from ...commands.transfer import run_load, run_save
from ...engine import history
from ...engine.content import mount as mounts
from ...engine.errors import LocalChanges, TagInUse
from ...engine.formatting import human_bytes, human_time
from ...output import DiffView
from . import words
from .parts import (
    FIELD,
    Confirm,
    ProgressBar,
    button,
    done,
    dropdown,
    heading,
    note,
    result,
    row,
    table,
    text,
    unreachable,
    wide,
)


class DatasetsTab:
    def __init__(self, panel):
        self.panel = panel
        self.engine = panel.engine
        self.datasets, self.providers, self.versions = [], [], []
        self.entries, self.files_of, self.where = [], None, ""
        self.diff = None  # the chosen version's changes since the version before (engine/history.py Diff)
        self.want = None  # (dataset id, version) to choose once the lists show it (one just saved)
        # Set while the panel itself changes a selection, in the thread that changes it: a person's choice arrives
        # in the kernel's own thread meanwhile (while a reading shows other lists) and must not be taken for one.
        self._local = threading.local()
        self._files_lock = threading.RLock()  # a folder shown is computed and written whole: no thread's is stale
        self.described = None  # the dataset whose description the field shows
        # A result line belongs to what was chosen when its action ran: widget -> (scope, key), see _drop_stale.
        self.made_for: dict[int, tuple] = {}

        self.table = wide("gj-datasets")
        self.unlisted = W.HTML()
        self.unlisted.add_class("gj-unlisted")
        self.choice = dropdown(words.DATASET, "gj-dataset")
        self.choice.observe(self._dataset_chosen, "value")
        self.description = text(*words.DESCRIPTION, "gj-description")
        self.description_button = button(words.SAVE_DESCRIPTION, "gj-description-button")
        self.description_button.on_click(lambda _: self.save_description())
        self.description_result = result("gj-description-result")
        self.delete_dataset_button = button(words.DELETE_DATASET, "gj-delete-dataset-button")
        self.delete_dataset_button.on_click(lambda _: self.ask_delete_dataset())
        self.dataset_confirm = Confirm("gj-confirm-dataset")
        self.dataset_result = result("gj-dataset-result")

        self.versions_table = wide("gj-versions")
        self.drafts = []
        self.drafts_note = W.HTML()
        self.drafts_note.add_class("gj-drafts-note")
        self.draft = dropdown(words.DRAFT, "gj-draft")
        self.delete_draft_button = button(words.DELETE_DRAFT, "gj-delete-draft-button")
        self.delete_draft_button.on_click(lambda _: self.ask_delete_draft())
        self.draft_confirm = Confirm("gj-confirm-draft")
        self.draft_result = result("gj-draft-result")
        self.drafts_box = W.VBox(
            [
                heading(words.DRAFTS_HEADING),
                self.drafts_note,
                self.draft,
                row(self.delete_draft_button),
                self.draft_confirm.box,
            ],
            layout={"display": "none"},
        )
        self.version = dropdown(words.VERSION, "gj-version")
        self.version.observe(self._version_chosen, "value")
        self.delete_version_button = button(words.DELETE_VERSION, "gj-delete-version-button")
        self.delete_version_button.on_click(lambda _: self.ask_delete_version())
        self.version_confirm = Confirm("gj-confirm-version")
        self.version_result = result("gj-version-result")

        self.files_title = W.HTML()
        self.files = W.Select(rows=8, layout=FIELD)
        self.files.add_class("gj-files")
        self.files.observe(self._file_chosen, "value")
        self.preview = wide("gj-preview")
        self.files_result = result("gj-files-result")

        self.tag = text(*words.TAG, "gj-tag")
        self.set_tag_button = button(words.SET_TAG, "gj-set-tag-button")
        self.set_tag_button.on_click(lambda _: self.set_tag())
        self.delete_tag_button = button(words.DELETE_TAG, "gj-delete-tag-button")
        self.delete_tag_button.on_click(lambda _: self.delete_tag())
        self.tag_confirm = Confirm("gj-confirm-tag")
        self.tag_result = result("gj-tag-result")

        self.changes = wide("gj-changes")
        self.compare = dropdown(words.COMPARE, "gj-compare")
        self.compare.observe(self._compare_chosen, "value")
        self.changes_result = result("gj-changes-result")

        self.dest = text(*words.DEST, "gj-load-dest")
        self.load_button = button(words.LOAD, "gj-load-button", "primary")
        self.load_button.on_click(lambda _: self.load())
        self.load_confirm = Confirm("gj-confirm-load")
        self.load_progress = ProgressBar("gj-load-progress")
        self.load_result = result("gj-load-result")

        self.mount_dir = text(*words.MOUNT_DIR, "gj-mount-dir")
        self.mount_button = button(words.MOUNT, "gj-mount-button")
        self.mount_button.on_click(lambda _: self.mount())
        self.mount_result = result("gj-mount-result")
        self.mounts = dropdown(words.MOUNTS, "gj-mounts")
        self.unmount_button = button(words.UNMOUNT, "gj-unmount-button")
        self.unmount_button.on_click(lambda _: self.unmount())
        self.unmount_result = result("gj-unmount-result")

        self.save_fields = {
            key: text(label, hint, f"gj-save-{key}", cls=W.Combobox if key == "name" else W.Text)
            for key, (label, hint) in words.SAVE_FIELDS.items()
        }
        self.provider = dropdown(words.SAVE_PROVIDER, "gj-save-provider")
        self.save_button = button(words.SAVE, "gj-save-button", "primary")
        self.save_button.on_click(lambda _: self.save())
        self.save_confirm = Confirm("gj-confirm-save")
        self.save_progress = ProgressBar("gj-save-progress")
        self.save_result = result("gj-save-result")

        self.version_parts = W.VBox(
            [
                row(self.delete_version_button),
                self.version_confirm.box,
                self.version_result,
                heading(words.FILES_HEADING),
                self.files_title,
                self.files,
                self.files_result,
                self.preview,
                heading(words.CHANGES_HEADING),
                self.compare,
                self.changes_result,
                self.changes,
                heading(words.TAGS_HEADING),
                self.tag,
                row(self.set_tag_button, self.delete_tag_button),
                self.tag_confirm.box,
                self.tag_result,
                heading(words.LOAD_HEADING),
                self.dest,
                row(self.load_button),
                self.load_progress.box,
                self.load_result,
                self.load_confirm.box,  # under the refusal that tells of it
                heading(words.MOUNT_HEADING),
                self.mount_dir,
                row(self.mount_button),
                self.mount_result,
                self.mounts,
                row(self.unmount_button),
                self.unmount_result,
            ]
        )
        self.dataset_box = W.VBox(
            [
                self.description,
                row(self.description_button, self.delete_dataset_button),
                self.description_result,
                self.dataset_confirm.box,
                self.versions_table,
                self.version,
                self.version_parts,
                self.drafts_box,
                self.draft_result,  # outside its box: it tells of the last draft deleted too
            ]
        )
        # The dataset's result line stays outside its box: it tells of a deleted dataset too.
        self.box = W.VBox(
            [
                self.table,
                self.unlisted,
                self.choice,
                self.dataset_result,
                self.dataset_box,
                heading(words.SAVE_HEADING),
                *self.save_fields.values(),
                self.provider,
                row(self.save_button),
                self.save_progress.box,
                self.save_result,
                self.save_confirm.box,  # under the refusal that tells of it
            ]
        )
        self.show_providers([])
        self._show_dataset()

    @property
    def _quiet(self) -> bool:
        return getattr(self._local, "quiet", False)

    @_quiet.setter
    def _quiet(self, value: bool) -> None:
        self._local.quiet = value

    # -- reading (in a worker thread) and showing ----------------------------------------------------------------
    def fetch(self, selected: str | None = None):
        """Datasets, the chosen one (kept while it exists) and its committed versions."""
        # Providers skipped are told of under the list, from the usage reading (show_unlisted): not logged too.
        datasets = self.engine.datasets.list(warnings=[])
        ids = [d.id for d in datasets]
        if self.want and self.want[0] in ids:
            selected = self.want[0]
        selected = selected or self.choice.value
        if selected not in ids:
            selected = ids[0] if ids else None
        versions = self.engine.datasets.list_versions(selected) if selected else []
        drafts = self.engine.datasets.drafts(selected) if selected else []
        return datasets, selected, versions, drafts

    def show(self, data, providers=None) -> None:
        datasets, selected, versions, drafts = data
        if providers is not None:
            self.providers = providers
            self.show_providers(providers)
        self.datasets = datasets
        self.table.value = table(
            datasets_table(datasets, self.providers, empty=words.NO_DATASETS), "gj-datasets-table", hover={"Name": "ID"}
        )
        self._quiet = True
        try:
            self.choice.options = [(d.name, d.id) for d in datasets]
            self.choice.value = selected
            self.save_fields["name"].options = tuple(d.name for d in datasets)
        finally:
            self._quiet = False
        self.show_versions(versions, drafts)

    def dataset(self):
        return next((d for d in self.datasets if d.id == self.choice.value), None)

    def chosen_version(self):
        return next((v for v in self.versions if v.ref == self.version.value), None)

    def show_providers(self, providers) -> None:
        keep = self.provider.value
        self.provider.options = [(words.SAVE_PROVIDER_DEFAULT, "")] + [
            (words.TEAM_DEFAULT.format(name=p.name) if p.is_team_default else p.name, p.id) for p in providers
        ]
        self.provider.value = keep if keep in {p.id for p in providers} else ""

    def show_versions(self, versions, drafts=()) -> None:
        d = self.dataset()
        self.versions = versions if d else []
        self._show_dataset()
        if d is None:
            return
        self.show_drafts(d, list(drafts))
        self.versions_table.value = table(versions_table(d, versions), "gj-versions-table", hover={"Version": "ID"})
        keep = self.version.value
        if self.want and self.want[0] == d.id:
            keep, self.want = f"{d.id}:{self.want[1]}", None
        self._quiet = True
        try:
            self.version.options = [(self._version_label(v), v.ref) for v in versions]
            refs = [v.ref for v in versions]
            self.version.value = keep if keep in refs else (refs[0] if refs else None)
        finally:
            self._quiet = False
        self._show_version()
        self.show_mounts()

    @staticmethod
    def _version_label(v) -> str:
        tags = words.TAGS.format(tags=", ".join(v.tags)) if v.tags else ""
        message = words.MESSAGE.format(message=v.message) if v.message else ""
        return words.VERSION_OPTION.format(
            version=v.version, tags=tags, when=human_time(v.dt_committed), message=message
        )

    def named(self, version: str | None, d=None) -> str:
        """A version as a person knows it, as the successes name it: `name:version (tags)`, the tags as now."""
        d = d or self.dataset()
        tags = next((o.tags for o in self.versions if o.version == version), ())
        return f"{d.name if d else ''}:{version}" + (words.TAGS.format(tags=", ".join(tags)) if tags else "")

    # -- results belong to the selection they were made for -------------------------------------------------------
    def _key(self, scope: str):
        """What a result line of `scope` answers: the dataset, the version, or the version with its tags (a line
        that names the tags, e.g. Loaded mnist:dyk57l5 (tag v1))."""
        d, v = self.dataset(), self.chosen_version()
        if scope == "dataset":
            return d.id if d else None
        if scope == "version":
            return v.ref if v else None
        return (v.ref, v.tags) if v else None

    def _scoped(self, widget: W.HTML, scope: str, *closes) -> W.HTML:
        """`widget` now answers the selection of `scope` as it is; `closes`: its question, its bar."""
        self.made_for[id(widget)] = (widget, scope, self._key(scope), closes)
        return widget

    def _drop_stale(self) -> None:
        """Clear every result line (with its question and bar) whose selection is no longer the one shown."""
        for key, (widget, scope, made, closes) in list(self.made_for.items()):
            if made != self._key(scope):
                self.made_for.pop(key, None)
                widget.value = ""
                for part in closes:
                    (part.close if isinstance(part, Confirm) else part.hide)()

    def _show_dataset(self) -> None:
        d = self.dataset()
        self.dataset_box.layout.display = "none" if d is None else None
        # The field shows the description once per dataset chosen: a reading must not undo what is being typed.
        if d is not None and d.id != self.described:
            self.description.value, self.described = d.description, d.id
            if not self.save_fields["name"].value.strip():  # the save form follows the dataset shown first, too
                self.save_fields["name"].value = d.name
        self._drop_stale()

    def _show_version(self) -> None:
        v = self.chosen_version()
        self.version_parts.layout.display = "none" if v is None else None
        self.version_confirm.close()
        self.tag_confirm.close()
        self._drop_stale()
        if v is not None and v.ref != self.files_of:
            self.read_files(v)
        elif v is not None:
            self.show_compare(v)
            self.show_changes()  # the same version: its tags (in the heading) may have changed

    def _dataset_chosen(self, change) -> Thread | None:
        d = self.dataset()
        if self._quiet or d is None:
            return None
        self.save_fields["name"].value = d.name  # the save form follows the dataset chosen above it
        self.description.value, self.described = d.description, d.id
        self.dataset_confirm.close()
        return self.panel.run(
            self.dataset_result,
            "",
            lambda: self.show_versions(self.engine.datasets.list_versions(d), self.engine.datasets.drafts(d)),
            [],
            refresh=False,
        )

    def _version_chosen(self, change) -> None:
        if not self._quiet:
            self._show_version()

    # -- files ---------------------------------------------------------------------------------------------------
    def read_files(self, v) -> Thread | None:
        d = self.dataset()

        def work():
            entries = self.engine.datasets.list_files(d, v.version)
            with self._files_lock:
                if self.files_of != v.ref:  # a second read of the same version (a refresh) keeps the folder open
                    self.where, self.preview.value = "", ""
                self.entries, self.files_of = entries, v.ref
                self.show_folder()

        self.show_compare(v, fresh=True)
        self.read_changes()
        return self.panel.run(
            self.files_result, words.READING_FILES.format(ref=f"{d.name}:{v.version}"), work, [], refresh=False
        )

    # -- what changed: from the version before (default) or from any other version chosen ---------------------
    def show_compare(self, v, *, fresh: bool = False) -> None:
        """The versions the chosen one can be compared with: the version before it (its parent) first, then every
        other. A parent that was deleted is no choice: then none is chosen and the line asks for one."""
        parent_gone = v.parent is not None and all(o.version != v.parent for o in self.versions)
        options = []
        if not parent_gone:
            if v.parent is not None:
                label = words.COMPARE_PARENT.format(named=self.named(v.parent))
            else:  # lineage recorded and no parent: the first version; else the engine takes the one before
                label = words.COMPARE_FIRST if v.created_by is not None else words.COMPARE_BEFORE
            options.append((label, ""))
        options += [(self._version_label(o), o.ref) for o in self.versions if o.ref != v.ref]
        keep = None if fresh else self.compare.value
        values = [value for _, value in options]
        self._quiet = True
        try:
            self.compare.options = options
            self.compare.value = keep if keep in values else ("" if not parent_gone else None)
        finally:
            self._quiet = False
        if parent_gone and self.compare.value is None:
            self.changes.value, self.diff = "", None
            self.changes_result.value = note(words.REFUSALS["unknown-parent"].format(version=self.named(v.version)))

    def _compare_chosen(self, change) -> None:
        if not self._quiet:
            self.read_changes()

    def read_changes(self) -> Thread | None:
        """Read what changed (from the two manifests only, like `datasets versions diff`) for the choice shown."""
        d, v, other = self.dataset(), self.chosen_version(), self.compare.value
        if d is None or v is None or other is None:
            return None
        self.changes.value, self.diff = "", None
        label = (
            self.named(other.partition(":")[2])
            if other
            else next((shown for shown, value in self.compare.options if value == ""), "")
        )

        def changes():
            self.diff = history.diff(self.engine, other, v.ref) if other else history.diff(self.engine, v.ref)
            self.show_changes()

        return self.panel.run(
            self._scoped(self.changes_result, "version"),
            words.READING_CHANGES.format(named=self.named(v.version), other=label),
            changes,
            [],
            refresh=False,
            known=lambda exc: {"version": self.named(v.version)},
        )

    def show_changes(self) -> None:
        """The chosen version's changes, its versions named as a person knows them: the dataset's name, the tags
        as they are now (read again with every list of versions, so a tag set after the diff was read shows)."""
        d, v, diff = self.dataset(), self.chosen_version(), self.diff
        if d is None or v is None or diff is None or v.ref not in (diff.after_ref, diff.before_ref):
            return
        self.changes.value = DiffView(diff, name=lambda ref: self.named(ref.partition(":")[2]))._repr_html_()

    def show_folder(self) -> None:
        with self._files_lock:
            d, v, where = self.dataset(), self.chosen_version(), self.where
            options = [(words.FOLDER_UP, "..")] if where else []
            for path, size in folder_rows(self.entries, where):
                options.append((words.FILE_OPTION.format(name=path[len(where) :], size=size), path))
            self.files_title.value = note(
                words.FILES_IN.format(ref=f"{d.name}:{v.version}" if d and v else "", folder=where)
            )
            self._quiet = True
            try:
                self.files.options = options
                self.files.value = None
            finally:
                self._quiet = False

    def _file_chosen(self, change) -> None:
        path = change["new"]
        if self._quiet or not path:
            return
        if path == ".." or path.endswith("/"):
            with self._files_lock:
                self.where = folder(self.where.rstrip("/").rpartition("/")[0]) if path == ".." else path
                self.show_folder()
        else:
            self.show_preview(path)

    def show_preview(self, path: str) -> Thread | None:
        d, v = self.dataset(), self.chosen_version()
        entry = next(e for e in self.entries if e.path == path)

        def work():
            size = human_bytes(entry.size)
            if entry.size > words.PREVIEW_LIMIT:
                return note(words.PREVIEW_LARGE.format(path=path, size=size))
            _, chunks = self.engine.datasets.read_file(d, v.version, path)
            data = b"".join(chunks)
            try:
                shown = data.decode("utf-8")
            except UnicodeDecodeError:
                return note(words.PREVIEW_BINARY.format(path=path, size=size))
            self.preview.value = words.PREVIEW.format(path=html.escape(path), size=size, text=html.escape(shown))
            return ""

        self.preview.value = ""
        return self.panel.run(
            self._scoped(self.files_result, "version"), words.PREVIEWING.format(path=path), work, [], refresh=False
        )

    # -- dataset actions -------------------------------------------------------------------------------------------
    def save_description(self) -> Thread | None:
        d, description = self.dataset(), self.description.value

        def work():
            self.engine.datasets.update(d, description=description)
            return note(words.SAVED_DESCRIPTION.format(name=d.name), "ok")

        return self.panel.run(
            self._scoped(self.description_result, "dataset"),
            words.SAVING_DESCRIPTION.format(name=d.name),
            work,
            [self.description_button],
        )

    def ask_delete_dataset(self) -> None:
        d = self.dataset()
        if d is not None:
            self.dataset_confirm.ask(
                words.CONFIRM_DELETE_DATASET.format(name=d.name, count=len(self.versions)),
                words.DELETE_DATASET,
                lambda: self.delete_dataset(d),
            )

    def delete_dataset(self, d) -> Thread | None:
        def work():
            self.engine.datasets.delete(d)
            return note(words.DELETED_DATASET.format(name=d.name), "ok")

        return self.panel.run(
            self.dataset_result,
            words.DELETING_DATASET.format(name=d.name),
            work,
            [self.delete_dataset_button],
            usage=True,
        )

    # -- drafts: versions a save left uncommitted, or made to put files into --------------------------------------
    def show_drafts(self, d, drafts: list) -> None:
        self.drafts = drafts
        self.drafts_box.layout.display = None if drafts else "none"
        self.draft_confirm.close()
        if not drafts:
            return
        held = human_bytes(sum(x.held_bytes for x in drafts))
        self.drafts_note.value = note(words.DRAFTS.format(count=len(drafts), name=d.name, size=held))
        keep = self.draft.value
        self.draft.options = [
            (
                words.DRAFT_OPTION.format(
                    version=x.version.version,
                    size=human_bytes(x.held_bytes),
                    when=human_time(x.version.dt_created),
                    how=words.DRAFT_INTERRUPTED if x.save_over else "",
                ),
                x.ref,
            )
            for x in drafts
        ]
        refs = [x.ref for x in drafts]
        self.draft.value = keep if keep in refs else refs[0]

    def ask_delete_draft(self) -> None:
        d = self.dataset()
        x = next((x for x in self.drafts if x.ref == self.draft.value), None)
        if d is None or x is None:
            return
        named = f"{d.name}:{x.version.version}"
        self.draft_confirm.ask(
            words.CONFIRM_DELETE_DRAFT.format(named=named, size=human_bytes(x.held_bytes)),
            words.DELETE_DRAFT,
            lambda: self.delete_draft(d, x.version.version),
        )

    def delete_draft(self, d, version: str) -> Thread | None:
        named = f"{d.name}:{version}"

        def work():
            self.engine.datasets.delete_version(d, version)
            return note(words.DELETED_DRAFT.format(named=named), "ok")

        return self.panel.run(
            self._scoped(self.draft_result, "dataset"),
            words.DELETING_DRAFT.format(named=named),
            work,
            [self.delete_draft_button],
            usage=True,
        )

    # -- version actions --------------------------------------------------------------------------------------------
    def ask_delete_version(self) -> None:
        d, v = self.dataset(), self.chosen_version()
        if v is None:
            return
        self.version_confirm.ask(
            words.CONFIRM_DELETE_VERSION.format(named=self.named(v.version)),
            words.DELETE_VERSION,
            lambda: self.delete_version(d, v),
        )

    def delete_version(self, d, v) -> Thread | None:
        named = self.named(v.version, d)

        def work():
            self.engine.datasets.delete_version(d, v.version)
            return note(words.DELETED_VERSION.format(named=named), "ok")

        # It tells of the dataset once the version is gone: it stays while that dataset is shown.
        return self.panel.run(
            self._scoped(self.version_result, "dataset"),
            words.DELETING_VERSION.format(version=named),
            work,
            [self.delete_version_button],
            usage=True,
        )

    def set_tag(self, *, move: bool = False) -> Thread | None:
        d, v, tag = self.dataset(), self.chosen_version(), self.tag.value.strip()
        if v is None or not tag:
            self._scoped(self.tag_result, "version").value = note(words.NO_TAG if v else words.NO_VERSION, "error")
            return None
        other = next((o.version for o in self.versions if tag in o.tags), None)
        if other is not None and other != v.version and not move:
            # Nothing moves a tag silently: ask first.
            self.tag_confirm.ask(
                words.CONFIRM_MOVE_TAG.format(tag=tag, other=self.named(other), version=self.named(v.version)),
                words.MOVE_TAG,
                lambda: self.set_tag(move=True),
            )
            return None

        def work():
            self.engine.datasets.set_tag(d, tag, v.version)
            self.want = (d.id, v.version)
            return note(words.TAG_SET.format(tag=tag, version=f"{d.name}:{v.version}"), "ok")

        return self.panel.run(
            self._scoped(self.tag_result, "version"),
            words.SETTING_TAG.format(tag=tag, version=f"{d.name}:{v.version}"),
            work,
            [self.set_tag_button, self.delete_tag_button],
        )

    def delete_tag(self) -> Thread | None:
        d, tag = self.dataset(), self.tag.value.strip()
        if d is None or not tag:
            self._scoped(self.tag_result, "version").value = note(words.NO_TAG, "error")
            return None
        version = next((o.version for o in self.versions if tag in o.tags), "")

        def work():
            self.engine.datasets.delete_tag(d, tag)
            return note(words.TAG_DELETED.format(tag=tag, version=f"{d.name}:{version}"), "ok")

        return self.panel.run(
            self._scoped(self.tag_result, "version"),
            words.DELETING_TAG.format(tag=tag),
            work,
            [self.set_tag_button, self.delete_tag_button],
        )

    # -- save and load ---------------------------------------------------------------------------------------------
    def save(self, *, move_tag: bool = False) -> Thread | None:
        """Save the folder as a new committed version of the named dataset (created if new)."""
        f = {key: field.value.strip() for key, field in self.save_fields.items()}
        provider, progress = self.provider.value or None, self.save_progress
        progress.hide()
        self.save_confirm.close()

        def work():
            progress.start("hash")
            view = run_save(
                self.engine,
                f["name"],
                f["folder"],
                progress=progress,
                message=self.save_fields["message"].value,
                provider=provider,
                tag=f["tag"] or None,
                move_tag=move_tag,
            )
            # A kept message or tag would describe, or try to move a tag to, the next save as well.
            self.save_fields["message"].value = self.save_fields["tag"].value = ""
            self.want = (view.dataset.id, view.version.version)
            return done(
                words.SAVED.format(headline=view.headline(named=True), line=view.line()), view.warnings, view.ref
            )

        def known(exc) -> dict:
            if isinstance(exc, TagInUse):  # the version it names, as a person knows it
                d = next((d for d in self.datasets if d.name.lower() == f["name"].lower()), None)
                other = self.named(exc.version, d) if d and d.id == self.choice.value else f"{f['name']}:{exc.version}"
                return {"tag": exc.tag, "other": other}
            return {"name": f["name"]}

        def refused(exc):
            progress.finish(False)
            if isinstance(exc, TagInUse):  # nothing moves a tag silently: ask
                self.save_confirm.ask(
                    words.CONFIRM_MOVE_TAG_ON_SAVE.format(tag=f["tag"]),
                    words.MOVE_TAG_AND_SAVE,
                    lambda: self.save(move_tag=True),
                )

        return self.panel.run(
            self.save_result,
            words.SAVING.format(folder=f["folder"], name=f["name"]),
            work,
            [self.save_button],
            on_error=refused,
            usage=True,
            known=known,
        )

    def load(self, *, overwrite: bool = False) -> Thread | None:
        """Load the chosen version into the folder (default ./<dataset name>); local changes are asked about."""
        d, v, dest = self.dataset(), self.chosen_version(), self.dest.value.strip() or None
        if v is None:
            self.load_result.value = note(words.NO_VERSION, "error")
            return None
        progress = self.load_progress
        progress.hide()
        self.load_confirm.close()
        named = self.named(v.version)

        def work():
            progress.start("verify")
            view = run_load(self.engine, v.ref, dest, progress=progress, overwrite=overwrite)
            return done(
                words.LOADED.format(headline=view.headline(named=True), line=view.line()), view.warnings, view.ref
            )

        def refused(exc):
            progress.finish(False)
            if isinstance(exc, LocalChanges):  # never assumed: the user says whether their edits may go
                shown = ", ".join(exc.paths[:5]) + (", ..." if len(exc.paths) > 5 else "")
                self.load_confirm.ask(
                    words.CONFIRM_OVERWRITE.format(count=len(exc.paths), paths=shown),
                    words.OVERWRITE_AND_LOAD,
                    lambda: self.load(overwrite=True),
                )

        return self.panel.run(
            self._scoped(self.load_result, "named", self.load_confirm, self.load_progress),
            words.LOADING.format(name=d.name, version=v.version),
            work,
            [self.load_button],
            on_error=refused,
            known=lambda exc: {"dest": getattr(exc, "dest", dest), "ref": named},
        )

    # -- mounts ------------------------------------------------------------------------------------------------------
    def mount(self) -> Thread | None:
        """Mount the chosen version read-only (default ./datasets/<dataset name>), as `mount REF [DIR]` does."""
        d, v, folder = self.dataset(), self.chosen_version(), self.mount_dir.value.strip() or None
        if v is None:
            self.mount_result.value = note(words.NO_VERSION, "error")
            return None
        named = self.named(v.version)

        def work():
            made = mounts.mount(self.engine, v.ref, folder)
            said = words.ALREADY_MOUNTED if made.unchanged else words.MOUNTED
            line = said.format(named=named, folder=made.folder, files=made.files, size=human_bytes(made.size))
            # what else the command layer says of it (a rebuilt mount, files kept aside), after the panel's line
            return done(line, str(mount_message(made)).splitlines()[1:])

        return self.panel.run(
            self._scoped(self.mount_result, "named"),
            words.MOUNTING.format(name=d.name, version=v.version),
            work,
            [self.mount_button],
        )

    def show_mounts(self) -> None:
        d = self.dataset()
        # Every mount of this dataset the data home knows (made here, by the magic, the console or the server)
        found = [r for r in mounts.mounts(self.engine) if d and r.get("dataset") == d.id]
        keep = self.mounts.value
        self.mounts.options = [
            (words.MOUNT_OPTION.format(folder=r["folder"], named=self.named(str(r.get("version")), d)), r["folder"])
            for r in found
        ] or [(words.NO_MOUNTS, "")]
        values = [r["folder"] for r in found]
        self.mounts.value = keep if keep in values else (values[0] if values else "")
        self.unmount_button.disabled = not found

    def unmount(self) -> Thread | None:
        folder = self.mounts.value
        if not folder:
            return None

        def work():
            kept = mounts.unmount(self.engine, folder)
            if kept:
                shown = ", ".join(kept[:5]) + (", ..." if len(kept) > 5 else "")
                return note(words.UNMOUNTED_KEPT.format(folder=folder, count=len(kept), paths=shown), "ok")
            return note(words.UNMOUNTED.format(folder=folder), "ok")

        return self.panel.run(
            self._scoped(self.unmount_result, "dataset"),
            words.UNMOUNTING.format(folder=folder),
            work,
            [self.unmount_button],
        )

    def show_unlisted(self, usage: dict) -> None:
        """Say which providers' datasets are missing from the list, and why (their buckets cannot be read)."""
        self.unlisted.value = unreachable(usage, words.UNLISTED)
