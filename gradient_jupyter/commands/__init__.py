"""Command groups of the grammar. Each module has `register(groups)` adding its words to the top-level parser."""

from __future__ import annotations

import argparse
import importlib

# The first word of each command -> the module that registers it, in the order `--help` lists them.
MODULES = {
    "storageProviders": "providers",
    "datasets": "datasets",
    "save": "transfer",
    "load": "transfer",
    "mount": "mounts",
    "unmount": "mounts",
    "cache": "mounts",
}


def register_all(groups, first_word: str | None = None) -> None:
    """Every group's words; or, for words starting with a known `first_word`, only the group that word belongs to:
    the console script then imports one command module, not all of them (a parser holding only that group parses
    those words, and words their usage errors, exactly as the whole one does)."""
    names = [MODULES[first_word]] if first_word in MODULES else list(dict.fromkeys(MODULES.values()))
    for name in names:
        importlib.import_module(f".{name}", __name__).register(groups)


def add_group(groups, name: str, help: str, **kwargs) -> argparse._SubParsersAction:
    """A word that needs a further word (e.g. `storageProviders`); returns its own subparsers."""
    parser = groups.add_parser(name, help=help, description=help, **kwargs)
    parser.set_defaults(usage_parser=parser, handler=None)
    return parser.add_subparsers(metavar="COMMAND", parser_class=type(parser))


def add_command(groups, name: str, help: str, handler, **kwargs) -> argparse.ArgumentParser:
    parser = groups.add_parser(name, help=help, description=help, **kwargs)
    parser.set_defaults(handler=handler, usage_parser=parser)
    return parser
