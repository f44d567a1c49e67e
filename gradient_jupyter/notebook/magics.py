"""`%gradient_storage`: the command grammar of the console script, as an IPython line and cell magic."""

from __future__ import annotations

import getpass
import shlex
import sys

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from ..cli import Context, HelpRequested, UsageError, build_parser, failure, parse
from ..engine import GradientError
from ..engine.errors import interrupted
from ..output import Message
from ..progress import auto_bar

PROG = "%gradient_storage"


class CommandFailed(Exception):
    """The engine refused a command. IPython shows `_render_traceback_` instead of a traceback; the cell fails."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        return [f"Error: {self.message}"]


class CommandInterrupted(CommandFailed):
    """Ctrl-C (an interrupted kernel) stopped a command: the console's one line (`errors.interrupted`)."""

    def _render_traceback_(self) -> list[str]:
        return [self.message]


def without_comment(text: str) -> str:
    """`text` up to a `#` that starts a word outside quotes, as a shell reads it (`a#b` and `"#3"` stay whole)."""
    quote, escaped = None, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def split_words(text: str) -> list[str]:
    """The words of a command line, split as a shell would: quotes, backslashes, and a trailing `# comment` dropped."""
    try:
        return shlex.split(without_comment(text))
    except ValueError as exc:  # an unclosed quote
        raise IPythonUsageError(f"{PROG}: cannot split the words: {exc}.") from exc


def cell_commands(line: str, cell: str) -> list[list[str]]:
    """The words of each command in a cell: one per non-empty line (a trailing backslash continues it; lines starting
    with # are comments), each after the words of the magic's own line, so `%%gradient_storage datasets` can hold
    `list` and `details --id X`."""
    prefix = split_words(line)
    commands, pending = [], ""
    for text in cell.splitlines():
        if not pending and text.lstrip().startswith("#"):
            continue
        text = without_comment(text)
        if text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
            continue
        words = split_words(pending + text)
        pending = ""
        if words:
            commands.append(prefix + words)
    if pending.strip():
        commands.append(prefix + split_words(pending))
    return commands


def ask_secret(prompt: str) -> str:
    """getpass as the kernel provides it; a front end that cannot answer input requests (nbconvert, papermill, a
    client with allow_stdin off) reads as a closed standard input: the command then says what to give instead."""
    from IPython.core.error import StdinNotImplementedError

    try:
        return getpass.getpass(prompt)
    except StdinNotImplementedError:
        raise EOFError(prompt) from None


def notebook_context() -> Context:
    """A Context for commands run in a kernel or IPython shell."""
    from ..api import default_engine

    return Context(
        engine_factory=default_engine,
        prompt_secret=ask_secret,
        warn=lambda text: print(text, file=sys.stderr),
        in_notebook=True,
        progress=auto_bar,
        prog=PROG,
    )


@magics_class
class GradientStorageMagics(Magics):
    @line_cell_magic
    def gradient_storage(self, line: str, cell: str | None = None):
        """Storage providers and versioned datasets, with the Gradient CLI's words.

        %gradient_storage                   (no words, in a notebook: the panel)
        %gradient_storage storageProviders list
        %gradient_storage save NAME PATH [-m MESSAGE] [--tag T]
        %gradient_storage load REF [DEST]
        %gradient_storage --help            (every word takes --help)

        What a command did (an output.Message: `Created storage provider: sp...`, `Deleted ...`, `Set dataset tag
        ...`, `Mounted ...`) is shown at once, wherever the line stands in the cell, and the line's value is None;
        anything else (a listing, details, a diff, a check, a save's or load's summary) is the line's value, shown
        when the line ends the cell, so `saved = %gradient_storage save ...` keeps it.

        As a cell magic, each non-empty line of the cell is one command (after the words on the %%gradient_storage
        line, if any). Every line is checked before any runs, so a usage error anywhere runs nothing.
        """
        commands = [split_words(line)] if cell is None else cell_commands(line, cell)
        if not any(commands):
            if getattr(self.shell, "kernel", None) is not None:  # a notebook: no words show the panel
                from .panel import panel

                display(panel())
                return None
            print(build_parser(PROG).format_help().rstrip())  # a terminal cannot draw widgets: show the words
            return None
        try:
            parsed = [parse(words, PROG) for words in commands]
        except HelpRequested as exc:
            print(str(exc).rstrip())
            return None
        except UsageError as exc:
            raise IPythonUsageError(str(exc).rstrip()) from exc
        ctx = notebook_context()
        for args in parsed:
            try:
                result = args.handler(ctx, args)
            except (GradientError, OSError) as exc:
                raise CommandFailed(failure(exc)) from exc  # %tb shows the cause (a store's request id)
            except KeyboardInterrupt as exc:  # one line, as the console prints it, not a traceback
                raise CommandInterrupted(interrupted(exc)) from exc
            if cell is None and not isinstance(result, Message):
                return result  # a value: IPython shows it when the line ends the cell; `x = %...` keeps it
            if result is not None:
                display(result)  # IPython would show a returned value only on a cell's last line
        return None
