"""The argument types of the command words: the shape of an id, ref or flag is checked while parsing, so a malformed
one is a usage error, the same in the magic and the console script."""

from __future__ import annotations

import argparse

from ..engine import BadInput
from ..engine.ids import DATASET_NAME, TAG_NAME, VERSION_ID, parse_ref

EXAMPLE = "mydata"


FOLLOW_LINKS = "save what links leading out of a folder point to (refused without it; the data home never)"


# -- argument types: the shape of --id is checked while parsing, so a malformed one is a usage error ----------------
def dataset_arg(text: str) -> str:
    if not DATASET_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected a dataset name or id, e.g. {EXAMPLE}, not {text!r}")
    return text


def ref_arg(text: str) -> str:
    try:
        parse_ref(text)
    except BadInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from exc
    return text


def version_arg(text: str) -> tuple[str, str]:
    name, _, version = text.partition(":")
    if not DATASET_NAME.fullmatch(name) or not VERSION_ID.fullmatch(version):
        raise argparse.ArgumentTypeError(
            f"expected DATASET:VERSION (a 7-character version id), e.g. {EXAMPLE}:abc1234, not {text!r}"
        )
    return name, version


def tag_ref_arg(text: str) -> tuple[str, str]:
    name, _, tag = text.partition(":")
    if not DATASET_NAME.fullmatch(name) or not TAG_NAME.fullmatch(tag):
        raise argparse.ArgumentTypeError(f"expected DATASET:TAG, e.g. {EXAMPLE}:prod, not {text!r}")
    return name, tag


def bool_arg(text: str) -> bool:
    value = text.lower()
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return value == "true"


def committed_arg(text: str) -> bool | None:
    return None if text.lower() == "all" else bool_arg(text)
