"""Results of commands: plain text for a terminal, HTML for a notebook (`_repr_html_`), JSON-able data."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence

from .engine.formatting import human_bytes

# Control characters (ANSI escapes start with ESC) and bidirectional overrides can rewrite a terminal or reorder a
# line: names, messages and paths come from users and buckets, so they are shown escaped, never obeyed.
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_TEXT = re.compile(f"[{_UNSAFE}]")
_UNSAFE_CELL = re.compile(f"[{_UNSAFE}\t\n]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with control characters and bidi overrides escaped (\\x1b, \\u202e); line breaks and tabs kept."""
    return _UNSAFE_TEXT.sub(_escape, text)


def cell(value) -> str:
    """One line of a table: like `printable`, and line breaks and tabs escaped too, so no value forges a row."""
    return _UNSAFE_CELL.sub(_escape, "" if value is None else str(value))


class Text:
    """Lines of text a command found (a history, a policy document): a value, like a Table."""

    def __init__(self, text: str, data=None):
        self.text = printable(text)
        self.data = data

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


class Message(Text):
    """What a command did, in one or more lines (`Created dataset: ds...`): the magic shows it at once, wherever
    its line stands in the cell, as the console prints it (notebook/magics.py)."""


class Table:
    """Rows under column headings; `title` is printed above."""

    def __init__(
        self, columns: Sequence[str], rows: Sequence[Sequence], title: str = "", data=None, empty: str = "(none)"
    ):
        self.columns = list(columns)
        self.rows = [[cell(v) for v in row] for row in rows]
        self.title = cell(title)
        self.data = data
        self.empty = empty

    def __str__(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            return "\n".join(lines + [self.empty])
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        fmt = lambda row: "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
        lines += [fmt(self.columns), fmt(["-" * w for w in widths])] + [fmt(r) for r in self.rows]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, hover: dict[str, str] | None = None) -> str:
        """The table as HTML. `hover` maps a shown column to one that is left out and shown on hover instead
        (the panel's names before ids: {"Name": "ID"})."""
        hover = hover or {}
        title = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        if not self.rows:
            return f"{title}<p>{html.escape(self.empty)}</p>"
        hidden = {self.columns.index(c) for c in hover.values() if c in self.columns}
        tips = {
            self.columns.index(c): self.columns.index(t)
            for c, t in hover.items()
            if c in self.columns and t in self.columns
        }
        shown = [i for i in range(len(self.columns)) if i not in hidden]
        head = "".join(f"<th style='text-align:left'>{html.escape(self.columns[i])}</th>" for i in shown)

        def cell(row, i):
            tip = f" title='{html.escape(row[tips[i]])}'" if i in tips else ""
            return f"<td style='text-align:left'{tip}>{html.escape(row[i])}</td>"

        body = "".join("<tr>" + "".join(cell(r, i) for i in shown) + "</tr>" for r in self.rows)
        return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def details(title: str, fields: dict, data=None) -> Table:
    """A two-column table of field: value, for one object."""
    return Table(["field", "value"], [[k, v] for k, v in fields.items()], title=title, data=data)


def _version_fields(dataset, version) -> dict:
    return {
        "ref": version.ref,
        "dataset": dataset.name,
        "message": version.message,
        "committed": "yes" if version.is_committed else "no",
        "tags": ", ".join(version.tags),
        "files": version.file_count,
        "size": human_bytes(version.size),
    }


class TransferView:
    """What `save` or `load` did: the version's ref, files, size and tags, and the transfer's summary line.

    Other attributes are the engine's TransferSummary's (`files`, `bytes_sent`, `seconds`, ...).
    """

    def __init__(self, summary, verb: str):
        self.summary = summary
        self.verb = verb
        self.data = {"dataset": summary.dataset.to_json(), "version": summary.version.to_json()}

    @property
    def ref(self) -> str:
        return self.summary.version.ref

    def __getattr__(self, name):
        if name.startswith("_"):  # IPython's display hooks and copy/pickle probes are not delegated
            raise AttributeError(name)
        return getattr(self.summary, name)

    def headline(self, named: bool = False) -> str:
        """E.g. `Saved dsxxx:ver (dataset flowers, tag v1)`; `named` puts the dataset's name in the ref instead,
        where a person reads it (the panel: `Saved flowers:ver (tag v1)`, the id on hover)."""
        s = self.summary
        tags = s.version.tags
        tags = f"tag{'s' if len(tags) > 1 else ''} {', '.join(tags)}" if tags else ""
        if named:
            ref, about = f"{s.dataset.name}:{s.version.version}", f" ({tags})" if tags else ""
        else:
            ref, about = self.ref, f" (dataset {s.dataset.name}{', ' + tags if tags else ''})"
        into = f" into {s.destination}" if s.destination else ""
        if s.unchanged:  # save found nothing new: the answer is the latest version, and nothing was committed
            return f"Unchanged: {ref}{about} already holds these files; no new version was made"
        return f"{self.verb} {ref}{about}{into}"

    def __str__(self) -> str:
        warnings = "".join(f"\nWarning: {w}" for w in self.summary.warnings)
        return printable(f"{self.headline()}\n{self.summary.line()}{warnings}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        s = self.summary
        fields = _version_fields(s.dataset, s.version)
        if s.destination:
            fields["destination"] = s.destination
        table = details(self.headline(), fields)._repr_html_()
        warnings = "".join(f"<p>Warning: {html.escape(printable(w))}</p>" for w in s.warnings)
        return f"{table}<p>{html.escape(s.line())}</p>{warnings}"


class OpenVersion:
    """A version opened for reading (`gradient_jupyter.open`): `.files`, `.read_bytes(path)`, `.open(path)`."""

    def __init__(self, reader, shown: int = 50):
        self.reader = reader
        self.shown = shown

    @property
    def ref(self) -> str:
        return self.reader.version.ref

    def __getattr__(self, name):
        if name.startswith("_"):  # IPython's display hooks and copy/pickle probes are not delegated
            raise AttributeError(name)
        return getattr(self.reader, name)

    def _files_table(self) -> Table:
        files = list(self.reader.files.items())
        rows = [[path, human_bytes(size)] for path, size in files[: self.shown]]
        if len(files) > self.shown:
            rows.append([f"... and {len(files) - self.shown} more", ""])
        return Table(["path", "size"], rows, title="Files")

    def __str__(self) -> str:
        head = details(f"Version {self.ref}", _version_fields(self.reader.dataset, self.reader.version))
        return f"{head}\n\n{self._files_table()}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = details(f"Version {self.ref}", _version_fields(self.reader.dataset, self.reader.version))
        return head._repr_html_() + self._files_table()._repr_html_()


class DryRunView:
    """What `save --dry-run` found: the changes against the latest version, one line each, and nothing sent."""

    def __init__(self, diff, name: str):
        self.diff = diff
        self.name = name
        self.data = diff.to_json()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.diff, name)

    def headline(self) -> str:
        against = f"the latest version {self.diff.before_ref}" if self.diff.before_ref else "nothing (a new dataset)"
        verdict = "would make a new version" if self.diff.changed else "would change nothing (unchanged)"
        return f"Dry run: saving {self.diff.after_ref} as {self.name} {verdict}; against {against}. Nothing was sent."

    def __str__(self) -> str:
        return printable("\n".join([self.headline(), *self.diff.lines()]))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


class DiffView:
    """What changed between two versions (`gradient_jupyter.diff`, `datasets versions diff`): one line per change
    (`A path`, `D path`, `M path`, `R old -> new`), then a summary.

    Other attributes are the engine's Diff's (engine/history.py): `added`, `removed`, `modified`, `renamed`,
    `unchanged`, `bytes_added`, `bytes_removed`, `to_json()`. `name(ref)` words a version's ref in the headline
    (the panel: the dataset's name and the version's tags); the HTML form keeps the refs on hover.
    """

    def __init__(self, diff, shown: int = 500, name: Callable[[str], str] | None = None):
        self.diff = diff
        self.shown = shown
        self.name = name or str
        self.data = diff.to_json()

    def __getattr__(self, name):
        if name.startswith("_"):  # IPython's display hooks and copy/pickle probes are not delegated
            raise AttributeError(name)
        return getattr(self.diff, name)

    def headline(self) -> str:
        d = self.diff
        before = self.name(d.before_ref) if d.before_ref else "nothing (the dataset's first version)"
        return f"Changes from {before} to {self.name(d.after_ref)}"

    def __str__(self) -> str:
        return printable(f"{self.headline()}\n{self.diff}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        changes = self.diff.changes()
        names = {"A": "added", "D": "removed", "M": "modified", "R": "renamed"}
        rows = "".join(
            f"<tr><td>{status}</td><td style='text-align:left'>{html.escape(names[status])}</td>"
            f"<td style='text-align:left'><code>{html.escape(text)}</code></td></tr>"
            for status, text in changes[: self.shown]
        )
        if len(changes) > self.shown:
            rows += f"<tr><td></td><td colspan='2'>... and {len(changes) - self.shown} more</td></tr>"
        table = f"<table><tbody>{rows}</tbody></table>" if rows else "<p>No changes.</p>"
        refs = " -> ".join(ref for ref in (self.diff.before_ref, self.diff.after_ref) if ref)
        return (
            f"<b title='{html.escape(refs)}'>{html.escape(self.headline())}</b>{table}"
            f"<p>{html.escape(self.diff.summary())}</p>"
        )


class ReportView:
    """The bucket doctor's report (engine/doctor/report.py) as a command's result: its text as the engine words it,
    HTML for a notebook (a table of the checks, what to type as <code>), and `ok` for the console's exit code.

    Other attributes are the engine's Report's (`checks`, `origins`, `action`, `notes`, `to_json()`, `report[id]`).
    """

    def __init__(self, report):
        self.report = report
        self.data = report.to_json()

    def __getattr__(self, name):
        if name.startswith("_"):  # IPython's display hooks and copy/pickle probes are not delegated
            raise AttributeError(name)
        return getattr(self.report, name)

    def __getitem__(self, check_id: str):
        return self.report[check_id]

    def __str__(self) -> str:
        return str(self.report)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        r, e = self.report, html.escape
        head = f"<b>Bucket setup of storage provider {e(r.provider.name)} ({e(r.provider.id)})</b>: {e(r.where())}"
        if r.origins:
            head += "<br>Browser origins: " + e(", ".join(r.origins))
        rows = [r.action] if r.action else []
        body = "".join(_check_row(c) for c in rows + r.checks)
        notes = "".join(f"<p>Note: {e(n)}</p>" for n in r.notes)
        return (
            f"<div class='gradient-doctor'><p>{head}</p><table><thead><tr><th style='text-align:left'>status</th>"
            "<th style='text-align:left'>check</th><th style='text-align:left'>detail and fix</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{notes}<p>{e(r.summary())}</p></div>"
        )


_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "skip": "#6e7781"}

# Wrap at spaces, never inside a word or an id (notebook CSS breaks <pre> anywhere); a word longer than the line
# (a URL) may still break. Words in the page's font: only what to type is <code>.
_FIX_STYLE = "white-space:pre-wrap; word-break:normal; overflow-wrap:break-word; margin:0.3em 0"


def _check_row(c) -> str:
    """One of the doctor's checks (engine/doctor/report.py `Check`) as a row: status, title, detail and fix."""
    e = html.escape
    badge = f"<b style='color:{_COLOURS.get(c.status, '#000')}'>{e(c.status.upper())}</b>"
    fix = (
        f"<div class='gradient-fix' style='{_FIX_STYLE}'>{_marked(c.fix)}</div>" if c.fix and c.status != "pass" else ""
    )
    return (
        f"<tr data-check='{e(c.id)}'><td style='text-align:left; vertical-align:top'>{badge}</td>"
        f"<td style='text-align:left; vertical-align:top'>{e(c.title)}</td>"
        f"<td style='text-align:left'>{_marked(c.detail)}{fix}</td></tr>"
    )


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
