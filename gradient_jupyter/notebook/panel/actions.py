"""The datasets tab's actions on a version (delete, tags, load, mount) and the save form."""

from __future__ import annotations

from threading import Thread

import ipywidgets as W

from ...commands.mounts import mount_message
from ...commands.transfer import run_load, run_save
from ...engine.content import mount as mounts
from ...engine.errors import LocalChanges, TagInUse
from ...engine.formatting import human_bytes
from . import words
from .parts import Confirm, ProgressBar, button, done, dropdown, heading, note, result, row, text
from .selection import Selection


class VersionActions(Selection):
    """What can be done with the chosen version, and saving a folder as a new one (a part of DatasetsTab)."""

    def _delete_version_widgets(self) -> list:
        self.delete_version_button = button(words.DELETE_VERSION, "gj-delete-version-button")
        self.delete_version_button.on_click(lambda _: self.ask_delete_version())
        self.version_confirm = Confirm("gj-confirm-version")
        self.version_result = result("gj-version-result")
        return [row(self.delete_version_button), self.version_confirm.box, self.version_result]

    def _tag_widgets(self) -> list:
        self.tag = text(*words.TAG, "gj-tag")
        self.set_tag_button = button(words.SET_TAG, "gj-set-tag-button")
        self.set_tag_button.on_click(lambda _: self.set_tag())
        self.delete_tag_button = button(words.DELETE_TAG, "gj-delete-tag-button")
        self.delete_tag_button.on_click(lambda _: self.delete_tag())
        self.tag_confirm = Confirm("gj-confirm-tag")
        self.tag_result = result("gj-tag-result")
        return [
            heading(words.TAGS_HEADING),
            self.tag,
            row(self.set_tag_button, self.delete_tag_button),
            self.tag_confirm.box,
            self.tag_result,
        ]

    def _load_widgets(self) -> list:
        self.dest = text(*words.DEST, "gj-load-dest")
        self.load_button = button(words.LOAD, "gj-load-button", "primary")
        self.load_button.on_click(lambda _: self.load())
        self.load_confirm = Confirm("gj-confirm-load")
        self.load_progress = ProgressBar("gj-load-progress")
        self.load_result = result("gj-load-result")
        return [
            heading(words.LOAD_HEADING),
            self.dest,
            row(self.load_button),
            self.load_progress.box,
            self.load_result,
            self.load_confirm.box,  # under the refusal that tells of it
        ]

    def _mount_widgets(self) -> list:
        self.mount_dir = text(*words.MOUNT_DIR, "gj-mount-dir")
        self.mount_button = button(words.MOUNT, "gj-mount-button")
        self.mount_button.on_click(lambda _: self.mount())
        self.mount_result = result("gj-mount-result")
        self.mounts = dropdown(words.MOUNTS, "gj-mounts")
        self.unmount_button = button(words.UNMOUNT, "gj-unmount-button")
        self.unmount_button.on_click(lambda _: self.unmount())
        self.unmount_result = result("gj-unmount-result")
        return [
            heading(words.MOUNT_HEADING),
            self.mount_dir,
            row(self.mount_button),
            self.mount_result,
            self.mounts,
            row(self.unmount_button),
            self.unmount_result,
        ]

    def _save_widgets(self) -> list:
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
        return [
            heading(words.SAVE_HEADING),
            *self.save_fields.values(),
            self.provider,
            row(self.save_button),
            self.save_progress.box,
            self.save_result,
            self.save_confirm.box,  # under the refusal that tells of it
        ]

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
