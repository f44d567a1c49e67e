"""The panel's building blocks: fields, result lines, a confirmation row, a progress bar, tables that fit."""

from __future__ import annotations

import html
import re
import threading

import ipywidgets as W
from traitlets import Unicode

from ...cli import failure
from ...engine import GradientError
from ...engine.formatting import human_bytes
from ...engine.models import ProgressEvent
from ...output import Table
from ...progress import PHASES
from . import words

FIELD = {"width": "100%", "max_width": "38em"}
LABELS = {"description_width": "8em"}
COLORS = {
    "info": "inherit",
    "busy": "var(--jp-ui-font-color2, #616161)",
    "ok": "var(--jp-success-color1, #388e3c)",
    "error": "var(--jp-error-color1, #d32f2f)",
}
# One stylesheet for the whole panel: tables scroll sideways instead of being cut off in a narrow notebook,
# and text wraps at spaces, never inside a word or an id.
STYLE = """<style>
.gj-panel .gj-wide > .widget-html-content { min-width: 0; flex: 1 1 auto; max-width: 100%; overflow-x: auto; }
.gj-panel .gj-scroll { overflow-x: auto; max-width: 100%; }
.gj-panel .gj-scroll table { border-spacing: 1em 0.15em; margin-left: -1em; }
.gj-panel .gj-scroll td, .gj-panel .gj-scroll th { white-space: nowrap; vertical-align: top; }
.gj-panel .gj-scroll td:last-child { white-space: normal; min-width: 12em; }
.gj-panel .widget-html-content { word-break: normal; overflow-wrap: break-word; }
.gj-panel .gj-result .widget-html-content { white-space: normal; line-height: 1.4; }
.gj-panel .gj-wide .widget-html-content, .gj-panel .gj-heading .widget-html-content,
.gj-panel .gj-question .widget-html-content { line-height: 1.4; }
.gj-panel .gj-preview pre { white-space: pre; overflow-x: auto; max-height: 20em; }
.gj-panel code { background: var(--jp-layout-color2, #eee); padding: 0 0.2em; }
</style>"""


# A number and its unit ("0.0 s", "3 files", "1.2 MiB") never part at the end of a line.
IN_TIME = re.compile(r"\bin (?=\d)")  # "in 0.0 s" as one
UNIT = re.compile(r"(\d) (?=(?:s|ms|B|KiB|MiB|GiB|TiB|files?|version\(s\)|file\(s\))\b)")


def note(text: str, kind: str = "info") -> str:
    """A result line as HTML; `kind` is info, busy, ok or error (also its CSS class, gj-<kind>)."""
    shown = IN_TIME.sub("in\u00a0", UNIT.sub("\\1\u00a0", html.escape(text, quote=False)))
    return f"<span class='gj-{kind}' style='color:{COLORS[kind]}'>{shown}</span>"


def plain_words(exc: BaseException, **known) -> str:
    """What to tell the user about an error, in the panel's words, never a traceback: a refusal whose engine words
    name the console's way on is worded by words.REFUSALS (with what the control `known`s: names, versions); any
    other is the engine's message with a provider setting named by its field's label."""
    reason = getattr(exc, "reason", "")
    if isinstance(exc, GradientError) and reason in words.REFUSALS:
        cause = exc.__cause__
        known.setdefault("cause", getattr(cause, "message", str(cause)))
        try:
            return words.REFUSALS[reason].format(**known)
        except KeyError:  # the control did not know a name the words need: the engine's own words then
            pass
    if isinstance(exc, (GradientError, OSError)):
        return field_names(failure(exc))
    return words.UNEXPECTED.format(kind=type(exc).__name__, error=exc)


def field_names(text: str) -> str:
    """`text` with every provider setting named as the form labels its field."""
    return CONFIG_NAME.sub(lambda m: words.FIELDS[m.group(0)][0], text)


CONFIG_NAME = re.compile(r"\b(?:" + "|".join(words.CONFIG_NAMES) + r")\b")


def text(label: str, placeholder: str = "", css: str = "", cls=W.Text) -> W.Text:
    # continuous_update=False: the value is sent once, on blur, before the click of the button that uses it.
    widget = cls(description=label, placeholder=placeholder, continuous_update=False, layout=FIELD, style=LABELS)
    if css:
        widget.add_class(css)
    return widget


def button(label: str, css: str, style: str = "") -> W.Button:
    widget = W.Button(description=label, button_style=style, layout={"width": "auto"})
    widget.add_class(css)
    return widget


def dropdown(label: str, css: str) -> W.Dropdown:
    widget = W.Dropdown(description=label, style=LABELS, layout=FIELD)
    widget.add_class(css)
    return widget


def heading(label: str) -> W.HTML:
    widget = W.HTML(f"<b>{html.escape(label)}</b>", layout={"margin": "0.8em 0 0.2em 0"})
    widget.add_class("gj-heading")
    return widget


def row(*widgets: W.Widget) -> W.HBox:
    """Widgets side by side, wrapping onto the next line when the notebook is narrow."""
    return W.HBox(list(widgets), layout={"flex_flow": "row wrap", "align_items": "center"})


def wide(css: str) -> W.HTML:
    """An HTML area as wide as the panel whose content (a table, a report) scrolls sideways when wider."""
    widget = W.HTML(layout={"width": "100%"})
    widget.add_class("gj-wide")
    widget.add_class(css)
    return widget


def result(css: str) -> W.HTML:
    """The line next to a control where its result, error or busy state shows."""
    widget = W.HTML(layout={"margin": "0 0 0 0.5em"})
    widget.add_class("gj-result")
    widget.add_class(css)
    return widget


def table(table: Table, css: str, hover: dict[str, str] | None = None) -> str:
    return f"<div class='gj-scroll {css}'>{table.to_html(hover)}</div>"


def unreachable(usage: dict, template: str) -> str:
    """One error line per provider whose bucket could not be read (Engine.utilization), worded by `template`."""
    return "<br>".join(
        note(template.format(name=row["name"], error=row["error"]), "error")
        for row in usage["storageProviders"]
        if row.get("error")
    )


def done(text: str, warnings=(), hover: str = "") -> str:
    """A finished action's line (`hover`: what shows when the pointer rests on it, e.g. the ids), then the warnings
    it brought (e.g. a save's files left out)."""
    line = note(text, "ok")
    if hover:
        line = f"<span title='{html.escape(hover)}'>{line}</span>"
    return "<br>".join([line, *(note(words.WARNING.format(warning=w), "error") for w in warnings)])


def csv_words(value: str) -> list[str]:
    return [w.strip() for w in value.split(",") if w.strip()]


class SecretField(W.Password):
    """A password box whose secret never stays in widget state: the moment the browser sends it (on blur or
    Enter), the kernel takes it into `held` and empties the box, so a notebook saved at any time holds no secret.
    Its value is never echoed back to the browser either."""

    value = Unicode("", help="Always empty once the kernel has seen it.").tag(sync=True, echo_update=False)

    def __init__(self, label: str, placeholder: str, css: str):
        super().__init__(
            description=label, placeholder=placeholder, continuous_update=False, layout=FIELD, style=LABELS
        )
        self.add_class(css)
        self.held = ""
        self.hint = W.HTML()
        self.hint.add_class(css + "-hint")
        self.observe(self._take, "value")

    def _take(self, change) -> None:
        if change["new"]:
            self.held = change["new"]
            self.value = ""
            self.hint.value = note(words.SECRET_HELD, "busy")

    def take(self) -> str:
        """The secret typed, forgotten by the field (used once)."""
        secret, self.held = self.held, ""
        self.hint.value = ""
        return secret


class Confirm:
    """A question with Yes and Cancel buttons, hidden until asked: nothing destructive happens on one click."""

    def __init__(self, css: str):
        self.question = W.HTML()
        self.question.add_class("gj-question")
        self.yes = button("", css + "-yes", "danger")
        self.no = button(words.CANCEL, css + "-no")
        self.box = W.HBox(
            [self.question, self.yes, self.no],
            layout={"display": "none", "align_items": "center", "flex_flow": "row wrap"},
        )
        self.box.add_class(css)
        self._then = None
        self.yes.on_click(self._yes)
        self.no.on_click(lambda _: self.close())

    def ask(self, question: str, action: str, then) -> None:
        self.question.value = note(question)
        self.yes.description = action
        self._then = then
        self.box.layout.display = "flex"

    def close(self) -> None:
        self.box.layout.display = "none"
        self._then = None

    def _yes(self, _) -> None:
        then = self._then
        self.close()
        if then is not None:
            then()


class ProgressBar:
    """A bar and a line of text fed by the engine's ProgressEvents (from its worker threads); hidden when idle and
    until the first event (an action refused up front leaves no empty bar), hidden again when the action failed
    before moving a byte (a check that found a refusal is not a red bar); red only for a transfer cut short."""

    MOVING = ("upload", "download")

    def __init__(self, css: str):
        self.bar = W.FloatProgress(
            min=0.0, max=1.0, value=0.0, description="", style=LABELS, layout={"width": "100%", "max_width": "30em"}
        )
        self.label = W.Label()
        self.box = W.HBox([self.bar, self.label], layout={"display": "none", "flex_flow": "row wrap"})
        self.box.add_class(css)
        self._last: tuple | None = None
        self._moved = False
        self._lock = threading.Lock()

    def start(self, phase: str) -> None:
        self._last, self._moved = None, False
        self.bar.value, self.bar.bar_style, self.bar.description = 0.0, "info", PHASES.get(phase, phase)
        self.label.value = ""
        self.box.layout.display = "none"

    def hide(self) -> None:
        self.box.layout.display = "none"

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
            self._moved = self._moved or (event.phase in self.MOVING and bool(event.bytes_done or event.files_done))
            self.bar.value = min(1.0, fraction)
            self.bar.description = PHASES.get(event.phase, event.phase)
            self.label.value = words.PROGRESS.format(
                done=event.files_done,
                total=event.files_total,
                bytes_done=human_bytes(event.bytes_done),
                bytes_total=human_bytes(event.bytes_total),
            )
            self.box.layout.display = "flex"

    # The context manager the command layer's run_save and run_load close when the transfer ends.
    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.finish(kind is None)

    def finish(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.bar.value, self.bar.bar_style = 1.0, "success"
            elif self._moved:
                self.bar.bar_style = "danger"
            else:
                self.box.layout.display = "none"
