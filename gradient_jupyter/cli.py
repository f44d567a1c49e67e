"""The one command grammar (Gradient CLI words) behind the `%gradient_storage` magic and the `gradient-jupyter` script."""
from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from .engine import Engine, GradientError

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


@dataclass
class Context:
    """What commands need from the door they run behind."""

    engine_factory: Callable[[], Engine] = Engine
    prompt_secret: Callable[[str], str] = getpass.getpass
    warn: Callable[[str], None] = lambda text: print(text, file=sys.stderr)
    in_notebook: bool = False
    progress: Callable | None = None  # makes a progress bar: progress(total=, unit=, desc=) -> tqdm-like
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self.engine_factory()
        return self._engine


def build_parser() -> Parser:
    """The whole grammar; each command group adds its words in `gradient_jupyter/commands/`."""
    from .commands import register_all

    parser = Parser(prog=PROG, description="Storage providers and versioned datasets on S3-compatible stores.")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)
    register_all(groups)
    return parser


def run(words: list[str], ctx: Context | None = None):
    """Parse `words` and run the command; returns its output object. Raises UsageError, HelpRequested, GradientError."""
    parser = build_parser()
    args = parser.parse_args(words)
    handler = getattr(args, "handler", None)
    if handler is None:
        # A group or subgroup without its command word: show what can follow it.
        sub = getattr(args, "usage_parser", parser)
        raise UsageError(f"{sub.format_usage().rstrip()}\n{sub.prog}: error: a command is required")
    return handler(ctx or Context(), args)


def main(argv: list[str] | None = None) -> int:
    """Console script: exit 0 on success, 1 on an engine error or a failing report, 2 on a usage error."""
    words = sys.argv[1:] if argv is None else argv
    try:
        result = run(words, Context(progress=_text_progress))
    except HelpRequested as exc:
        print(str(exc).rstrip())
        return 0
    except UsageError as exc:
        print(str(exc).rstrip(), file=sys.stderr)
        return 2
    except GradientError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    if result is not None:
        print(str(result))
    return 0 if getattr(result, "ok", True) else 1  # e.g. a bucket check with a failing check


def _text_progress(**kwargs):
    from tqdm import tqdm

    return tqdm(file=sys.stderr, unit_scale=True, unit_divisor=1024, **kwargs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
