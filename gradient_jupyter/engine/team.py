"""The team file: an administrator's team id, storage providers, team default and Gradient Managed, read-only to
users (README.md, "Deploying for a team"; the format is team-file.schema.json, also docs/team-file.schema.json).

Credentials are named by reference only (`{"env": VAR}` or `{"file": PATH}`) and read each time a store is made
(`resolve_secret`), so a rotated secret works without a restart and no secret is ever copied into a data home.
`TeamSource.current()` reads the file again only when it changed, and keeps the last good reading when it breaks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput, GradientError
from .ids import check_endpoint

log = logging.getLogger("gradient_jupyter")

MAX_TEAM_FILE = 1024 * 1024  # far above any real team file; a larger one is refused before parsing
MAX_SECRET_FILE = 64 * 1024
SECRET_FIELDS = ("accessKey", "secretAccessKey")
STORE_FIELDS = ("bucket", "endpoint", "region", "signatureVersion", "profile")
SCHEMA = Path(__file__).with_name("team-file.schema.json")


class TeamFileError(GradientError):
    """The team file is missing, unreadable or invalid; the message names the file and the key (and line)."""

    status, reason = 500, "team-file"


class TeamSecretError(GradientError):
    """A secret the team file names by reference cannot be read now (env var unset, file missing)."""

    status, reason = 502, "team-secret"


@dataclass(frozen=True)
class TeamProvider:
    """One provider of the team file: its store fields, secret references and whether users may write."""

    name: str
    config: dict = field(repr=False)  # bucket, endpoint, region, signatureVersion, profile
    secrets: dict = field(repr=False)  # accessKey/secretAccessKey -> {"env": VAR} | {"file": PATH}
    read_only: bool = False
    where: str = ""  # its key in the file, for messages: "providers[0]"


@dataclass(frozen=True)
class Team:
    path: str
    team_id: str
    providers: tuple[TeamProvider, ...]
    default: str | None  # a provider name, "Gradient Managed", or None: each user's own default
    managed: TeamProvider | None  # Gradient Managed on S3, or None: the embedded folder
    managed_quota: int | None
    modified: str = ""  # when the file was last changed (ISO 8601): team providers' dtCreated and dtModified


def team_provider_id(team_id: str, name: str) -> str:
    """A team provider's id: the same for every user of the team (so refs and dataset records agree), from the
    team id and the provider's name (case-insensitive, as names are)."""
    digest = int.from_bytes(hashlib.sha256(f"{team_id}\0{name.lower()}".encode()).digest()[:10], "big")
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    chars = []
    for _ in range(13):
        digest, rest = divmod(digest, 36)
        chars.append(alphabet[rest])
    return "sp" + "".join(chars)


def resolve_secret(ref: dict, where: str) -> str:
    """The value a secret reference names, read now. `where` names its key in the team file for messages; the
    value itself is never put in one."""
    if "env" in ref:
        value = os.environ.get(ref["env"])
        if not value:
            raise TeamSecretError(
                f"The team file's {where} names the environment variable {ref['env']}, which is not set in this "
                "process: ask your administrator (the server's and kernels' environment must have it)."
            )
        return value
    path = ref["file"]
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise TeamSecretError(
            f"The team file's {where} names the file {path}, which cannot be read "
            f"({exc.strerror or type(exc).__name__}): ask your administrator."
        ) from None
    value = raw.decode("utf-8", "replace").strip()
    if not value or len(raw) > MAX_SECRET_FILE:
        raise TeamSecretError(f"The team file's {where} names the file {path}, which holds no usable secret.")
    return value


# -- reading and checking the file -------------------------------------------------------------------------------
def load_team_file(path: str | os.PathLike) -> Team:
    """Read and check a team file (YAML or JSON). Raises TeamFileError naming the key (and, in YAML, the line)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_TEAM_FILE + 1)
    except OSError as exc:
        raise TeamFileError(
            f"Team file {path} cannot be read ({exc.strerror or type(exc).__name__}): team providers are not "
            "available; user providers still work. Ask your administrator."
        ) from None
    if len(raw) > MAX_TEAM_FILE:
        raise TeamFileError(f"Team file {path} is larger than {MAX_TEAM_FILE // 1024} KiB: is it the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TeamFileError(f"Team file {path} is not UTF-8 text.") from None
    data, lines = _parse(path, text)
    if not isinstance(data, dict):
        raise TeamFileError(f"Team file {path} must hold a mapping (teamId, providers, ...).")
    _check(path, data, lines)
    return _team(path, data, lines)


def _modified(path: str) -> str:
    from datetime import datetime, timezone

    try:
        stamp = datetime.fromtimestamp(os.stat(path).st_mtime, timezone.utc)
    except OSError:
        return ""
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(path: str, text: str) -> tuple[object, dict[tuple, int]]:
    """The file's data and, for YAML, the line of each key path (JSON is YAML too, so one parser serves both)."""
    import yaml

    from .records import read_yaml  # safe, bounded, no aliases: the one loader for YAML people write

    try:
        data = read_yaml(text.encode(), f"Team file {path}", limit=MAX_TEAM_FILE)
        node = yaml.compose(text, Loader=yaml.SafeLoader)  # the same text again, for the line of each key
    except BadInput as exc:
        # Named by line and problem only: PyYAML's own message quotes the line, which may hold a secret.
        cause = exc.__cause__
        mark = getattr(cause, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(cause, "problem", None) or ("" if cause else exc.message)
        raise TeamFileError(f"Team file {path} is not valid YAML or JSON{at}: {problem}. Fix it.") from None
    lines: dict[tuple, int] = {}

    def walk(n, at: tuple) -> None:
        lines[at] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    lines[at + (k.value,)] = k.start_mark.line + 1
                    walk(v, at + (k.value,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, at + (i,))

    if node is not None:
        walk(node, ())
    return data, lines


def _where(at) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the top level)"


def _at(path: str, at: tuple, lines: dict[tuple, int]) -> str:
    line = lines.get(tuple(at))
    return f"Team file {path}: {_where(at)}" + (f" (line {line})" if line else "")


def _check(path: str, data: dict, lines: dict[tuple, int]) -> None:
    """The schema, then what a schema cannot say. Messages name keys, never values (a value may be a secret)."""
    import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra

    for at, block in _blocks(data):  # a literal secret first: the clearest message for the worst mistake
        for key in SECRET_FIELDS:
            if key in block and not isinstance(block[key], dict):
                raise TeamFileError(
                    f"{_at(path, (*at, key), lines)}: a secret written in the team file is refused. Give it by "
                    f'reference: {{"env": "VARIABLE"}} or {{"file": "/path/to/secret"}}, and remove it from the file.'
                )
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        error = jsonschema.exceptions.best_match(errors) or errors[0]
        raise TeamFileError(f"{_at(path, tuple(error.absolute_path), lines)}: {_rule(error)}")
    names: dict[str, int] = {}
    for i, p in enumerate(data.get("providers", [])):
        key = p["name"].strip().lower()
        if key == "gradient managed":
            raise TeamFileError(f"{_at(path, ('providers', i, 'name'), lines)}: 'Gradient Managed' is built in.")
        if key in names:
            raise TeamFileError(
                f"{_at(path, ('providers', i, 'name'), lines)}: the name is taken by providers[{names[key]}]."
            )
        names[key] = i
    default = data.get("teamDefault")
    if default is not None and default.strip().lower() not in (*names, "gradient managed"):
        raise TeamFileError(f"{_at(path, ('teamDefault',), lines)}: names no provider of the file.")


def _blocks(data: dict):
    if isinstance(data.get("gradientManaged"), dict):
        yield ("gradientManaged",), data["gradientManaged"]
    providers = data.get("providers")
    if isinstance(providers, list):
        for i, p in enumerate(providers):
            if isinstance(p, dict):
                yield ("providers", i), p


def _rule(error) -> str:
    """What a schema error asks for, in words that never repeat the value."""
    schema, kind = error.schema, error.validator
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"missing {', '.join(missing)}."
    if kind in ("additionalProperties", "unevaluatedProperties"):
        known = sorted(k for k in error.instance if isinstance(k, str))
        allowed = set(error.schema.get("properties", {}))
        return f"unknown key(s): {', '.join(k for k in known if k not in allowed) or '(see the schema)'}."
    if kind == "dependentRequired":
        return "accessKey and secretAccessKey go together."
    if kind == "not":
        return "give either profile or accessKey + secretAccessKey, not both."
    if kind == "oneOf" and error.schema.get("oneOf") and "env" in json.dumps(error.schema["oneOf"]):
        return 'must be {"env": "VARIABLE"} or {"file": "/absolute/path"}.'
    if kind == "type":
        return f"must be {'an' if schema['type'][0] in 'aeiou' else 'a'} {schema['type']}."
    if kind == "enum":
        return f"must be one of {', '.join(map(str, schema['enum']))}."
    if kind == "pattern":
        return f"{schema.get('description') or 'does not match'} (pattern {schema['pattern']})."
    if kind in ("minLength", "maxLength", "minimum"):
        return f"{kind} is {error.validator_value}."
    return "is not valid here (see docs/team-file.schema.json)."


def _team(path: str, data: dict, lines: dict[tuple, int]) -> Team:
    def provider(block: dict, at: tuple, name: str) -> TeamProvider:
        config = {k: block.get(k) for k in STORE_FIELDS}
        if config["endpoint"]:
            try:
                config["endpoint"] = check_endpoint(config["endpoint"])
            except BadInput as exc:
                raise TeamFileError(f"{_at(path, (*at, 'endpoint'), lines)}: {exc.message}") from None
        secrets = {k: dict(block[k]) for k in SECRET_FIELDS if k in block}
        return TeamProvider(name, config, secrets, bool(block.get("readOnly")), _where(at))

    managed = data.get("gradientManaged")
    return Team(
        path=path,
        team_id=data["teamId"],
        providers=tuple(
            provider(p, ("providers", i), p["name"].strip()) for i, p in enumerate(data.get("providers", []))
        ),
        default=data.get("teamDefault"),
        managed=provider(managed, ("gradientManaged",), "Gradient Managed") if managed else None,
        managed_quota=managed.get("quota") if managed else None,
        modified=_modified(path),
    )


class TeamSource:
    """The team file of an installation, read again when it changes (an administrator's edit, a ConfigMap update).

    `current()` answers (the team or None, the warning to show or None). A file that breaks after a good reading
    keeps the last good team (so the team id does not move under running work) and warns; each new problem is
    reported once to `on_problem` (default: logged as an error; the console script, whose listing prints it,
    sets None)."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = os.fspath(path) if path else ""
        self.on_problem: Callable[[str], object] | None = log.error
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._team: Team | None = None
        self._warning: str | None = None

    def current(self) -> tuple[Team | None, str | None]:
        if not self.path:
            return None, None
        try:
            st = os.stat(self.path)
            seen: tuple = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
        except OSError as exc:
            seen = ("error", exc.errno)
        with self._lock:
            if seen != self._seen:
                self._seen = seen
                try:
                    self._team, self._warning = load_team_file(self.path), None
                except TeamFileError as exc:
                    self._warning = exc.message
                    if self.on_problem is not None:
                        self.on_problem(exc.message)
            return self._team, self._warning
