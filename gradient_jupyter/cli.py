"""The one command grammar (Gradient CLI words) behind the `%gradient_storage` magic and the `gradient-jupyter`
script."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .engine.errors import GradientError, interrupted
from .progress import text_bar

if TYPE_CHECKING:
    from .engine import Engine

PROG = "gradient-jupyter"


class UsageError(Exception):
    """Words that do not form a command; `str()` is the usage of the command that was meant, and the problem."""


class HelpRequested(Exception):
    """`--help` was asked; `str()` is the help text."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so the magic can turn usage errors into IPython's UsageError."""

    def error(self, message):
        raise UsageError(f"{self.format_usage().rstrip()}\n{self.prog}: error: {message}")

    def exit(self, status=0, message=None):
        raise UsageError(message or "")

    def print_help(self, file=None):
        raise HelpRequested(self.format_help())


class VersionAction(argparse.Action):
    """`--version`: answered like `--help` (printed, exit 0), without argparse's own exit."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from .version import __version__

        raise HelpRequested(f"gradient-jupyter {__version__}")


def new_engine() -> Engine:
    """An Engine on the settings of the Jupyter config files, imported only when a command needs one (`--help`
    and usage errors do not)."""
    from .engine import Engine

    engine = Engine()
    engine.registry.team.on_problem = None  # a team file that cannot be used: `storageProviders list` says so
    return engine


@dataclass
class Context:
    """What commands need from the front end they run behind."""

    engine_factory: Callable[[], Engine] = new_engine
    prompt_secret: Callable[[str], str] = getpass.getpass
    warn: Callable[[str], None] = lambda text: print(text, file=sys.stderr)
    in_notebook: bool = False
    progress: Callable | None = None  # makes a progress bar: progress(total=, unit=, desc=) -> tqdm-like
    prog: str = PROG  # the name usage lines start with: the script's, or the magic's
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self.engine_factory()
        return self._engine


def build_parser(prog: str = PROG, first_word: str | None = None) -> Parser:
    """The whole grammar; each command group adds its words in `gradient_jupyter/commands/`. With the `first_word`
    of a command, only that command's group (commands/__init__.py `register_all`)."""
    from .commands import register_all

    parser = Parser(prog=prog, description="Storage providers and versioned datasets on S3-compatible stores.")
    parser.add_argument("--version", action=VersionAction, help="print the version of gradient-jupyter and exit")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)
    register_all(groups, first_word)
    return parser


def parse(words: list[str], prog: str = PROG) -> argparse.Namespace:
    """Parse `words` into a command's arguments (`.handler` runs it). Raises UsageError, HelpRequested."""
    parser = build_parser(prog, words[0] if words else None)
    args, extra = parser.parse_known_args(words)
    sub = getattr(args, "usage_parser", parser)  # the command the words were meant for
    if extra:
        sub.error(f"unrecognized arguments: {' '.join(unrecognized(extra, words))}")
    if getattr(args, "handler", None) is None:
        # A group or subgroup without its command word: show what can follow it.
        sub.error("a command is required")
    return args


def unrecognized(extra: list[str], words: list[str]) -> list[str]:
    """The words argparse did not take, as a usage error may show them: when the words mention a secret (a
    mistyped `--secretAcesKey S`, or a secret with a space left unquoted), every value is masked, since any of them
    may be the secret, and a usage error lands in the terminal and in the notebook."""
    if not any("secret" in w.lower() for w in words if w.startswith("-")):
        return extra
    return [
        w.split("=", 1)[0] + "=********" if w.startswith("-") and "=" in w else w if w.startswith("-") else "********"
        for w in extra
    ]


def run(words: list[str], ctx: Context | None = None):
    """Parse `words` and run the command; returns its output object. Raises UsageError, HelpRequested, GradientError."""
    ctx = ctx or Context()
    args = parse(words, ctx.prog)
    return args.handler(ctx, args)


def failure(exc: GradientError | OSError) -> str:
    """The one line a front end shows for a refused command: the engine's message, or the local file problem."""
    from .output import printable

    if isinstance(exc, GradientError):
        return printable(exc.message)
    if exc.strerror and exc.filename:  # e.g. a destination folder that cannot be made or written
        return printable(f"{exc.strerror}: {str(exc.filename)!r}")
    return printable(exc.strerror or str(exc))


def main(argv: list[str] | None = None) -> int:
    """Console script: exit 0 on success, 1 on an engine error or a failing report, 2 on a usage error.

    Output into a pipe its reader closed (`gradient-jupyter --help | head -1`) ends quietly with exit 1, as Python's
    documentation advises ("Note on SIGPIPE" in the `signal` module): no traceback on stderr."""
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # here, not at interpreter exit, so that a closed pipe is seen in this try
        sys.stderr.flush()
        return code
    except BrokenPipeError:
        # Python flushes the standard streams again on exit: point them at /dev/null so that flush succeeds.
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())
        return 1


def _main(words: list[str]) -> int:
    try:
        result = run(words, Context(progress=text_bar))
    except HelpRequested as exc:
        print(str(exc).rstrip())
        return 0
    except UsageError as exc:
        print(str(exc).rstrip(), file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # the reader of our output went away: not an error of the command, main ends quietly
    except (GradientError, OSError) as exc:
        print(f"Error: {failure(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(interrupted(exc), file=sys.stderr)
        return 130
    if result is not None:
        print(str(result))
    return 0 if getattr(result, "ok", True) else 1  # e.g. a bucket check with a failing check


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
