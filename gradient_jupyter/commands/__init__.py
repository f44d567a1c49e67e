"""Command groups of the grammar. Each module has `register(groups)` adding its words to the top-level parser."""

from __future__ import annotations

import argparse


def register_all(groups) -> None:
    from . import datasets, mounts, providers, transfer

    providers.register(groups)
    datasets.register(groups)
    transfer.register(groups)
    mounts.register(groups)


def add_group(groups, name: str, help: str, **kwargs) -> argparse._SubParsersAction:
    """A word that needs a further word (e.g. `storageProviders`); returns its own subparsers."""
    parser = groups.add_parser(name, help=help, description=help, **kwargs)
    parser.set_defaults(usage_parser=parser, handler=None)
    return parser.add_subparsers(metavar="COMMAND", parser_class=type(parser))


def add_command(groups, name: str, help: str, handler, **kwargs) -> argparse.ArgumentParser:
    parser = groups.add_parser(name, help=help, description=help, **kwargs)
    parser.set_defaults(handler=handler, usage_parser=parser)
    return parser
