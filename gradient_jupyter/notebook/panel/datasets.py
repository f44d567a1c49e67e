"""The datasets tab: the list, a dataset's versions and drafts, its description, delete. A version's files and
changes are files.py's part of it, the actions on a version and the save form actions.py's."""

from __future__ import annotations

import threading
from threading import Thread

import ipywidgets as W

from ...commands.datasets import datasets_table, versions_table
from ...engine.formatting import human_bytes, human_time
from . import words
from .actions import VersionActions
from .files import VersionFiles
from .parts import Confirm, button, dropdown, heading, note, result, row, table, text, unreachable, wide


class DatasetsTab(VersionFiles, VersionActions):
    def __init__(self, panel):
        self.panel = panel
        self.engine = panel.engine
        self.datasets, self.providers, self.versions = [], [], []
        self.want = None
        self._local = threading.local()
        self.described = None  # the dataset whose description the field shows
        self.made_for = {}
        self.version_parts = W.VBox(
            [
                *self._delete_version_widgets(),
                *self._files_widgets(),
                *self._tag_widgets(),
                *self._load_widgets(),
                *self._mount_widgets(),
            ]
        )
        self.dataset_box = W.VBox(self._dataset_widgets())
        self.box = W.VBox(self._list_widgets() + [self.dataset_box] + self._save_widgets())
        self.show_providers([])
        self._show_dataset()

    def _list_widgets(self) -> list:
        self.table = wide("gj-datasets")
        self.unlisted = W.HTML()
        self.unlisted.add_class("gj-unlisted")
        self.choice = dropdown(words.DATASET, "gj-dataset")
        self.choice.observe(self._dataset_chosen, "value")
        self.dataset_result = result("gj-dataset-result")
        # The dataset's result line stays outside its box: it tells of a deleted dataset too.
        return [self.table, self.unlisted, self.choice, self.dataset_result]

    def _dataset_widgets(self) -> list:
        """The chosen dataset's lines: its description, delete, its versions (and the chosen one's parts), drafts."""
        self.description = text(*words.DESCRIPTION, "gj-description")
        self.description_button = button(words.SAVE_DESCRIPTION, "gj-description-button")
        self.description_button.on_click(lambda _: self.save_description())
        self.description_result = result("gj-description-result")
        self.delete_dataset_button = button(words.DELETE_DATASET, "gj-delete-dataset-button")
        self.delete_dataset_button.on_click(lambda _: self.ask_delete_dataset())
        self.dataset_confirm = Confirm("gj-confirm-dataset")
        self.versions_table = wide("gj-versions")
        self.version = dropdown(words.VERSION, "gj-version")
        self.version.observe(self._version_chosen, "value")
        return [
            self.description,
            row(self.description_button, self.delete_dataset_button),
            self.description_result,
            self.dataset_confirm.box,
            self.versions_table,
            self.version,
            self.version_parts,
            self._drafts_widgets(),
            self.draft_result,  # outside its box: it tells of the last draft deleted too
        ]

    def _drafts_widgets(self) -> W.VBox:
        self.drafts: list = []
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
        return self.drafts_box

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

    def show_unlisted(self, usage: dict) -> None:
        """Say which providers' datasets are missing from the list, and why (their buckets cannot be read)."""
        self.unlisted.value = unreachable(usage, words.UNLISTED)
