"""The ipywidgets panel: the engine shown as widgets, beside the magic, the console script and the REST API
(README "The panel").

Each control runs its engine call in a worker thread and shows its busy state, result or error in the line next
to it, so the kernel stays free while a bucket answers and a slow provider blocks no other control; ipywidgets 8
sends widget updates from any thread. The panel follows the engine's change events, so what the magic or the
Python API change in this kernel shows at once; after each of its own actions, and whenever it is shown again,
it reads everything again, so changes made elsewhere show too. How much each bucket holds is the slowest reading
(every object of every bucket is listed): it is read in its own thread, so the lists never wait for it, and only
when it can have changed (shown, Refresh, a change from outside the panel, a panel action that adds or removes
bytes or providers); otherwise the last usage read is shown.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable

import ipywidgets as W

from ...engine import Engine, GradientError
from . import words
from .datasets import DatasetsTab
from .parts import STYLE, button, note, plain_words, result
from .providers import ProvidersTab


def panel(engine: Engine | None = None) -> W.Widget:
    """The storage panel for `engine` (default: the one the magic and the Python API use in this kernel)."""
    from ...api import default_engine

    try:
        engine = engine or default_engine()
    except GradientError as exc:
        return W.HTML(note(exc.message, "error"))
    return Panel(engine)


class Panel(W.VBox):
    """Two tabs, storage providers and datasets, kept current with the engine."""

    def __init__(self, engine: Engine):
        super().__init__()
        self.engine = engine
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._reading = {
            "lists": Rerun(self._start, self._read_lists, self._show_state),
            "usage": Rerun(self._start, self._read_usage, self._show_state),
        }
        self._error = ""
        self._state_lock = threading.Lock()
        self.providers = ProvidersTab(self)
        self.datasets = DatasetsTab(self)
        self.tabs = W.Tab(children=[self.providers.box, self.datasets.box], titles=list(words.TABS))
        self.refresh_button = button(words.REFRESH, "gj-refresh")
        self.refresh_button.on_click(lambda _: self.refresh(usage=True))
        self.refresh_result = result("gj-refresh-result")
        team = html.escape(engine.team_id)
        title = W.HTML(
            f"{STYLE}<b>{html.escape(words.TITLE)}</b> &middot; <span title='"
            f"{html.escape(words.TEAM_HINT.format(team=engine.team_id))}'>"
            f"{html.escape(words.TEAM.format(team=''))}<code>{team}</code></span>"
        )
        title.layout.margin = "0 1em 0 0"
        self.children = [
            W.HBox(
                [title, self.refresh_button, self.refresh_result],
                layout={"align_items": "center", "flex_flow": "row wrap"},
            ),
            self.tabs,
        ]
        self.add_class("gj-panel")
        engine.on_change(self._engine_changed)
        self._shown = False
        self.refresh(usage=True)

    def __repr__(self) -> str:  # the text/plain a notebook keeps next to the widget
        return "<Gradient storage panel: storage providers and datasets>"

    def _repr_mimebundle_(self, **kwargs):
        if self._shown:  # shown again: what changed elsewhere meanwhile shows too
            self.refresh(usage=True)
        self._shown = True
        return super()._repr_mimebundle_(**kwargs)

    def _engine_changed(self, what: str) -> None:
        with self._lock:
            own = threading.current_thread() in self._threads
        if not own:  # the magic or the Python API: anything may have changed. (An action of the panel reads after.)
            self.refresh(usage=True)

    # -- reading ----------------------------------------------------------------------------------------------
    def refresh(self, usage: bool = False) -> None:
        """Read providers and datasets again (in a thread); with `usage`, also ask every bucket how much it holds
        (in another thread: the lists never wait for it). Calls while a reading runs make one more run of it."""
        self._reading["lists"].request()
        if usage:
            self._reading["usage"].request()

    def _show_state(self) -> None:
        # Under a lock: the two readings end in their own threads, and the last to look must be the last to write.
        with self._state_lock:
            if self._reading["lists"].running:
                self.refresh_result.value = note(words.REFRESHING, "busy")
            elif self._reading["usage"].running:
                self.refresh_result.value = note(words.READING_USAGE, "busy")
            else:
                self.refresh_result.value = self._error

    def _read_lists(self) -> None:
        self._show_state()
        try:
            providers = self.engine.registry.list()
            self.providers.show(providers)  # with the last usage read
            try:
                self.datasets.show(self.datasets.fetch(), providers)
            except Exception as exc:  # the providers tab stays useful when datasets cannot be read
                self.datasets.dataset_result.value = note(plain_words(exc), "error")
            # a broken team file, shadowed names: next to Refresh, as the console prints them
            self._error = "<br>".join(note(w, "error") for w in self.engine.registry.warnings())
        except Exception as exc:  # shown next to Refresh; the panel stays usable
            self._error = note(plain_words(exc), "error")

    def _read_usage(self) -> None:
        self._show_state()
        try:
            usage = self.engine.utilization()  # one bucket that does not answer delays no other
        except Exception as exc:
            self._error = note(plain_words(exc), "error")
            return
        self.providers.show_usage(usage)
        self.datasets.show_unlisted(usage)

    # -- running actions ------------------------------------------------------------------------------------------
    def run(
        self,
        where: W.HTML,
        busy: str,
        work: Callable[[], str | None],
        buttons=(),
        on_error: Callable[[Exception], None] | None = None,
        refresh: bool = True,
        usage: bool = False,
        known: Callable[[Exception], dict] | None = None,
    ) -> threading.Thread | None:
        """Run `work()` in a thread; its busy state, then its result (returned HTML) or error show in `where`.

        `buttons` (the control's own) wait meanwhile; other controls stay usable. Afterwards (with `refresh`) the
        lists are read again, so what changed elsewhere shows too, and with `usage` (work that adds or removes
        bytes or providers) how much each bucket holds. `known(exc)`: the names the panel's words for a refusal
        need (parts.plain_words). Returns the thread (None if the control was still busy)."""
        buttons = list(buttons)
        if any(b.disabled for b in buttons):
            return None
        for b in buttons:
            b.disabled = True
        where.value = note(busy, "busy") if busy else ""

        def job():
            try:
                where.value = work() or ""
            except Exception as exc:  # as in the console: every failure becomes words, here next to its control
                where.value = note(plain_words(exc, **(known(exc) if known else {})), "error")
                if on_error is not None:
                    on_error(exc)
            finally:
                for b in buttons:
                    b.disabled = False
            if refresh:
                self.refresh(usage=usage)

        return self._start(job)

    def _start(self, target) -> threading.Thread:
        thread = threading.Thread(target=target, name="gradient-panel", daemon=True)
        with self._lock:  # known as the panel's before it runs: its first engine change event must see that
            self._threads.add(thread)
            thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> None:
        """Block until the panel's work (actions and reading) has finished; for scripts and tests."""
        while True:
            with self._lock:
                # A job starts the reading that follows it before it ends, so the next round sees that one.
                self._threads = {t for t in self._threads if t.is_alive()}
                threads = list(self._threads)
            if not threads:
                return
            for thread in threads:
                thread.join(timeout)


class Rerun:
    """Runs `work` in a thread started by `start`, then `after()`; a request while it runs makes one more run (not
    one per request), so a burst of changes costs two readings at most."""

    def __init__(self, start: Callable, work: Callable[[], None], after: Callable[[], None]):
        self.start, self.work, self.after = start, work, after
        self.running = self._again = False
        self._lock = threading.Lock()

    def request(self) -> None:
        with self._lock:
            if self.running:
                self._again = True
                return
            self.running = True
        self.start(self._loop)

    def _loop(self) -> None:
        while True:
            self.work()
            with self._lock:
                if not self._again:
                    self.running = False
                    break
                self._again = False
        self.after()
