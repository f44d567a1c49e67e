"""IDs and the syntax rules of names, written once for every front end."""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
from urllib.parse import urlsplit

from .errors import BadInput

_ALPHABET = string.ascii_lowercase + string.digits

TEAM_ID = re.compile(r"te[a-z0-9]{7}")
PROVIDER_ID = re.compile(r"sp[a-z0-9]{13}")
DATASET_ID = re.compile(r"ds[a-z0-9]{13}")
VERSION_ID = re.compile(r"[a-z0-9]{7}")
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TAG_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def random_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_team_id() -> str:
    return random_id("te", 7)


def new_provider_id() -> str:
    return random_id("sp", 13)


def new_dataset_id() -> str:
    return random_id("ds", 13)


def new_version_id() -> str:
    return random_id("", 7)


def quoted(value, limit: int = 60) -> str:
    """`repr` of a value for an error message, cut short: a 10 MB bad name must not come back as a 10 MB error."""
    if not isinstance(value, str):
        return f"(a {type(value).__name__})"
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def check(pattern: re.Pattern, value, what: str, rule: str) -> str:
    """Return `value` if it fully matches `pattern`, else raise BadInput naming the rule."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadInput(f"Invalid {what} {quoted(value)}: {rule}.", reason="invalid-" + what.replace(" ", "-"))
    return value


def check_team_id(value) -> str:
    return check(TEAM_ID, value, "team id", "expected 'te' followed by 7 lowercase letters or digits")


def check_dataset_name(value) -> str:
    return check(
        DATASET_NAME,
        value,
        "dataset name",
        "use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )


def check_tag_name(value) -> str:
    value = check(
        TAG_NAME,
        value,
        "tag name",
        "use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
    if value == "latest":
        raise BadInput(
            "The tag 'latest' is reserved: it always means the most recently committed version.", reason="reserved-tag"
        )
    return value


MAX_TEXT = 10_000  # descriptions and messages; records read back from a bucket are held to the same limit


def check_text(value, field: str) -> str:
    """A description or message: refused here if longer than a record read back may be, so that what is
    accepted is never skipped later as a damaged record."""
    if not isinstance(value, str):
        raise BadInput(f"'{field}' must be a string.")
    if len(value) > MAX_TEXT:
        raise BadInput(f"The {field} is too long: {len(value)} characters, at most {MAX_TEXT}.", reason="text-too-long")
    return value


def check_version_id(value) -> str:
    return check(VERSION_ID, value, "version", "a version id is 7 lowercase letters or digits")


def check_provider_name(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100 or not value.isprintable():
        raise BadInput(
            f"Invalid storage provider name {quoted(value)}: use 1-100 printable characters.",
            reason="invalid-provider-name",
        )
    return value.strip()


def check_bucket_name(value) -> str:
    rule = (
        "S3 bucket names are 3-63 characters of lowercase letters, digits, '.' and '-', "
        "starting and ending with a letter or digit"
    )
    check(BUCKET_NAME, value, "bucket name", rule)
    if ".." in value or value.startswith("xn--") or _is_ip(value):
        raise BadInput(
            f"Invalid bucket name {quoted(value)}: {rule}, with no '..' and not an IP address.",
            reason="invalid-bucket-name",
        )
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def check_endpoint(value) -> str:
    """An S3 endpoint is an http(s) URL with a host and no query, credentials or fragment."""
    hint = "expected a URL such as https://s3.example.com or http://127.0.0.1:9000"
    if not isinstance(value, str):
        raise BadInput(f"Invalid endpoint {quoted(value)}: {hint}.", reason="invalid-endpoint")
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise BadInput(f"Invalid endpoint {quoted(value)}: {hint}.", reason="invalid-endpoint") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BadInput(f"Invalid endpoint {quoted(value)}: {hint}.", reason="invalid-endpoint")
    if parts.username or parts.password:
        raise BadInput(
            "Invalid endpoint: do not put credentials in the URL; use accessKey and secretAccessKey.",
            reason="invalid-endpoint",
        )
    return value.strip().rstrip("/")


# Names no dataset path may hold, as a folder or a file, at any depth: `save` never versions them, so a manifest naming
# one was forged. git runs commands that `.git/config` (or the repository a `.git` file points at) names, such as
# core.fsmonitor, at the next `git status`; `.gradient/` holds gradient-jupyter's own records (what a load wrote, what
# a mount made). Compared as file systems that fold case (macOS, Windows), drop trailing dots and spaces (Windows),
# ignore some Unicode characters (macOS HFS+) or answer to short names (NTFS 8.3) would see them: as git does.
RESERVED_NAMES = frozenset({".git", ".gradient", "git~1", "gradie~1"})
_IGNORED_BY_HFS = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)  # str.translate: delete


def reserved_name(name: str) -> bool:
    """True if a file or folder called `name` would be `.git` or `.gradient` on some file system."""
    return name.translate(_IGNORED_BY_HFS).rstrip(". ").casefold() in RESERVED_NAMES


def check_file_path(value) -> str:
    """A dataset file path: relative, '/'-separated, no '..', '.', empty parts, backslash or NUL, and no part named
    `.git` or `.gradient` (RESERVED_NAMES)."""
    parts = value.split("/") if isinstance(value, str) else []
    bad = (
        not parts
        or not value
        or len(value) > 1024
        or value.startswith("/")
        or "\\" in value
        or "\x00" in value
        or "" in parts
        or "." in parts
        or ".." in parts
    )
    if bad or (len(value) > 1 and value[1] == ":"):
        raise BadInput(
            f"Invalid file path {quoted(value)}: use a relative path like 'a/b.csv' with no '..', '.', "
            "empty parts, backslashes or NUL characters.",
            reason="invalid-path",
        )
    # most paths hold neither word: one look at the whole path, not one per part
    lowered = value.translate(_IGNORED_BY_HFS).casefold()
    if ("git" in lowered or "gradie" in lowered) and (reserved := next(filter(reserved_name, parts), None)):
        raise BadInput(
            f"Invalid file path {quoted(value)}: it names {quoted(reserved)}, which no dataset version holds "
            "(.git is git's own repository, whose configuration git runs commands from; .gradient holds "
            "gradient-jupyter's records). save leaves such folders out.",
            reason="reserved-path",
        )
    # a part over 255 bytes has over 63 characters (4 bytes at most each): only then is it worth encoding
    if max(map(len, parts)) > 63 and any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in parts):
        # no common file system holds a longer name: such a file could be saved but never loaded
        raise BadInput(
            f"Invalid file path {quoted(value)}: a folder or file name is longer than 255 bytes.", reason="invalid-path"
        )
    return value


def parse_ref(ref) -> tuple[str, str]:
    """'<dataset name or id>[:<version | tag | latest>]' -> (dataset, selector); no ':' means latest."""
    if not isinstance(ref, str) or not ref.strip():
        raise BadInput("Give a dataset ref: <dataset name or id>[:<version | tag | latest>].", reason="invalid-ref")
    dataset, _, selector = ref.strip().partition(":")
    if not dataset or (":" in ref and not selector) or ":" in selector:
        raise BadInput(
            f"Invalid ref {quoted(ref)}: expected <dataset name or id>[:<version | tag | latest>].",
            reason="invalid-ref",
        )
    check_dataset_name(dataset)
    return dataset, selector or "latest"


def check_origin(value) -> str:
    """A browser origin (scheme://host[:port]), as browsers send it in the Origin header; a path is dropped."""
    hint = "expected a browser origin such as http://127.0.0.1:8888 or https://jupyter.example.com"
    try:
        parts = urlsplit(value.strip()) if isinstance(value, str) else None
        port = parts.port if parts else None
    except ValueError:
        parts = None
    if parts and (parts.username or parts.password):
        raise BadInput("Invalid origin: an origin has no user name or password in it.", reason="invalid-origin")
    host = parts.hostname if parts else None
    if (
        not parts
        or parts.scheme not in ("http", "https")
        or not host
        or not (re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", host) or ":" in host and _is_ip(host))
    ):
        raise BadInput(f"Invalid origin {quoted(value)}: {hint}.", reason="invalid-origin")
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")
