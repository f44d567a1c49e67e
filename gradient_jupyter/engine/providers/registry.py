"""The provider registry: named S3-compatible buckets with credentials, kept in SQLite in the data home, and the
team file's providers with them (team_providers.py)."""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..errors import BadInput, Conflict, Forbidden, NotFound
from ..ids import check_provider_name, new_provider_id, new_team_id
from ..team import TeamSource
from .model import MANAGED_NAME, MASK, Provider, clean_config
from .team_providers import with_team


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700 for the last part."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class ProviderRegistry:
    """Providers and installation settings in `<home>/registry.sqlite3` (0600), safe across processes."""

    def __init__(
        self,
        home: Path,
        *,
        team_id: str = "",
        managed_config: dict | None = None,
        on_change: Callable[[str], None] | None = None,
        team_file: str | os.PathLike | None = None,
        pinned_team: str = "",
        given: builtins.list[Provider] | tuple = (),
    ):
        """`pinned_team` (a team id) wins over the team file's; `given` providers (shipped to a worker in
        gradient://'s storage_options, SPEC 9.1) come before all others and are kept in memory only."""
        self.home = private_dir(Path(home))
        self._pinned_team = pinned_team
        self.given = tuple(given)
        self._on_change = on_change or (lambda what: None)
        self.path = self.home / "registry.sqlite3"
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(self.path, 0o600)
        self._local = threading.local()
        self._managed_config = managed_config or {"bucket": "gradient-managed"}
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS providers (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
                " config TEXT NOT NULL, is_default INTEGER NOT NULL DEFAULT 0, is_managed INTEGER NOT NULL DEFAULT 0,"
                " dt_created TEXT NOT NULL, dt_modified TEXT NOT NULL)"
            )
            db.execute("INSERT OR IGNORE INTO settings VALUES ('team_id', ?)", (new_team_id(),))
            if not db.execute("SELECT 1 FROM providers WHERE is_managed = 1").fetchone():
                has_default = db.execute("SELECT 1 FROM providers WHERE is_default = 1").fetchone()
                stamp = now_iso()
                db.execute(
                    "INSERT INTO providers VALUES (?, ?, '{}', ?, 1, ?, ?)",
                    (new_provider_id(), MANAGED_NAME, 0 if has_default else 1, stamp, stamp),
                )
        self.team = TeamSource(team_file)
        self._own_team_id = team_id or self._setting("team_id")

    @property
    def team_id(self) -> str:
        """The team file's team id when it has one (every user of the install shares it), else this one's."""
        if self._pinned_team:
            return self._pinned_team
        team, _ = self.team.current()
        return team.team_id if team else self._own_team_id

    # -- plumbing -------------------------------------------------------------------------------------------
    def forget_connections(self) -> None:
        """In a forked child: the parent's SQLite connections are not to be used here; each thread opens its own."""
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    @contextmanager
    def _tx(self):
        """One write transaction; BEGIN IMMEDIATE takes the lock up front so concurrent writers queue, not fail."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _setting(self, key: str) -> str:
        return self._db().execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]

    def _row(self, row: sqlite3.Row) -> Provider:
        config = self._managed_config if row["is_managed"] else json.loads(row["config"])
        return Provider(
            id=row["id"],
            name=row["name"],
            config=dict(config),
            is_team_default=bool(row["is_default"]),
            is_gradient_managed=bool(row["is_managed"]),
            dt_created=row["dt_created"],
            dt_modified=row["dt_modified"],
        )

    # -- queries --------------------------------------------------------------------------------------------
    def list(self) -> builtins.list[Provider]:
        """All providers: Gradient Managed first, then the team file's (engine/team.py), then the user's by
        creation time. Under a team file, its default is the only default, its Gradient Managed replaces the
        embedded one, and a user provider whose name a team provider takes is marked `shadowed`."""
        rows = self._db().execute("SELECT * FROM providers ORDER BY is_managed DESC, dt_created, name").fetchall()
        team, _ = self.team.current()
        own = [self._row(r) for r in rows]
        return [*self.given, *(with_team(team, own) if team else own)]

    def warnings(self) -> builtins.list[str]:
        """What every listing shows besides the providers: a team file that cannot be used, shadowed names."""
        team, problem = self.team.current()
        out = [problem] if problem else []
        for p in self.list():
            if p.shadowed:
                out.append(
                    f"Warning: your storage provider {p.name!r} ({p.id}) is shadowed by the team provider of that "
                    f"name (team file {team.path if team else ''}): the name now means the team's. Use its id, or "
                    "rename it: storageProviders update s3 --id ID --name NEW."
                )
        return out

    def get(self, id_or_name: str) -> Provider:
        """A provider by id, or by name (case-insensitive; a team provider's name before a user's)."""
        if not isinstance(id_or_name, str) or not id_or_name:
            raise BadInput("Give a storage provider id (sp...) or name.")
        providers = self.list()
        found = next((p for p in providers if p.id == id_or_name), None) or next(
            (p for p in providers if p.name.lower() == id_or_name.lower() and not p.shadowed), None
        )
        if found is None:
            raise NotFound(f"Unknown storage provider {id_or_name!r}: list them with 'storageProviders list'.")
        return found

    def sharing_bucket(self, provider: Provider) -> builtins.list[Provider]:
        """The other providers on the same bucket at the same endpoint: they share this team's folder there, so
        they reach the same datasets (listings show each once; one provider per bucket is enough)."""

        def where(p: Provider):
            return p.bucket, (p.endpoint or "").lower().rstrip("/")

        return [p for p in self.list() if p.id != provider.id and where(p) == where(provider) and p.bucket]

    def bucket_warning(
        self, provider: Provider, delete_one: str = "delete one with 'storageProviders delete --id ID'"
    ) -> str | None:
        """The warning to show when `provider` was made on a bucket another provider already uses, or None;
        `delete_one` says how to delete a provider in the front end's words."""
        others = self.sharing_bucket(provider)
        if not others:
            return None
        names = ", ".join(repr(p.name) for p in others)
        who, uses, all_ = (
            ("storage provider", "uses", "both") if len(others) == 1 else ("storage providers", "use", "all")
        )
        return (
            f"Warning: {who} {names} already {uses} bucket {provider.bucket!r} at "
            f"{provider.endpoint or 'AWS S3'}: {all_} reach the same datasets (each is listed once). One provider "
            f"per bucket is enough; {delete_one}."
        )

    def managed(self) -> Provider:
        return next(p for p in self.list() if p.is_gradient_managed)

    def default(self) -> Provider:
        return next((p for p in self.list() if p.is_team_default), None) or self.managed()

    def _check_editable(self, provider: Provider) -> None:
        if not provider.editable:
            raise Forbidden(
                f"Storage provider {provider.name!r} is a team provider: users cannot change or delete it. An "
                f"administrator changes it in the team file {provider.team_file}.",
                reason="team-provider",
            )

    @property
    def default_fixed(self) -> bool:
        """Whether the team file sets the team default (then users cannot change it)."""
        team, _ = self.team.current()
        return team is not None and team.default is not None

    def _check_default_free(self) -> None:
        team, _ = self.team.current()
        if team is not None and team.default is not None:
            raise Forbidden(
                f"The team default is {team.default!r}, set by the team file {team.path}: users cannot change it. "
                "Give --provider (storageProviderId) to use another provider.",
                reason="team-provider",
            )

    def _check_name_not_team(self, name: str) -> None:
        team, _ = self.team.current()
        if team is not None and name.lower() in {tp.name.lower() for tp in team.providers}:
            raise Conflict(
                f"{name!r} is the name of a team provider (team file {team.path}): choose another name.",
                reason="duplicate-name",
            )

    # -- changes --------------------------------------------------------------------------------------------
    def create(self, name: str, config: dict, *, is_team_default: bool = False, type: str = "s3") -> Provider:
        if type != "s3":
            raise BadInput(f"Unknown storage provider type {type!r}: the only type is 's3'.")
        name = check_provider_name(name)
        if isinstance(config, dict) and config.get("secretAccessKey") == MASK:
            raise BadInput(
                f"{MASK} is how a secret is shown, not a secret: give the real secret access key.",
                reason="masked-secret",
            )
        config = clean_config(config)
        self._check_name_not_team(name)
        if is_team_default:
            self._check_default_free()
        stamp = now_iso()
        pid = new_provider_id()
        with self._tx() as db:
            self._check_name_free(db, name)
            if is_team_default:
                db.execute("UPDATE providers SET is_default = 0")
            db.execute(
                "INSERT INTO providers VALUES (?, ?, ?, ?, 0, ?, ?)",
                (pid, name, json.dumps(config), int(is_team_default), stamp, stamp),
            )
        self._on_change("providers")
        return self.get(pid)

    def update(
        self,
        id_or_name: str,
        *,
        name: str | None = None,
        config: dict | None = None,
        is_team_default: bool | None = None,
    ) -> Provider:
        """Partial update: only the fields given change; config fields merge into the stored config."""
        current = self.get(id_or_name)
        self._check_editable(current)
        if is_team_default and not current.is_team_default:
            self._check_default_free()
        if current.is_gradient_managed and (name is not None or config):
            raise Conflict(
                "Gradient Managed is built in: only 'isTeamDefault' can change; configure it in "
                "jupyter_server_config.py (c.GradientStorage.managed_*).",
                reason="managed-provider",
            )
        if is_team_default is False and current.is_team_default:
            raise Conflict(
                "Make another provider the team default instead of unsetting this one.", reason="default-provider"
            )
        new_name = check_provider_name(name) if name is not None else current.name
        new_config = current.config
        if isinstance(config, dict) and config.get("secretAccessKey") == MASK:
            # The secret as every front end shows it: a form or a GET sent back unchanged keeps the real one.
            config = {k: v for k, v in config.items() if k != "secretAccessKey"}
        if config:
            patch = clean_config(config, partial=True)
            if patch.get("profile"):
                patch.setdefault("accessKey", None)
                patch.setdefault("secretAccessKey", None)
            elif patch.get("accessKey"):
                patch.setdefault("profile", None)
            new_config = clean_config({**current.config, **patch})
        with self._tx() as db:
            if new_name.lower() != current.name.lower():
                self._check_name_not_team(new_name)
                self._check_name_free(db, new_name)
            if is_team_default:
                db.execute("UPDATE providers SET is_default = 0")
            db.execute(
                "UPDATE providers SET name = ?, config = ?, is_default = ?, dt_modified = ? WHERE id = ?",
                (
                    new_name,
                    "{}" if current.is_gradient_managed else json.dumps(new_config),
                    int(bool(is_team_default) or self._stored_default(db, current.id)),
                    now_iso(),
                    current.id,
                ),
            )
        self._on_change("providers")
        return self.get(current.id)

    def delete(self, id_or_name: str) -> Provider:
        """Delete a provider. Refuses Gradient Managed and the team default. (Datasets are checked by the caller.)"""
        current = self.get(id_or_name)
        self._check_editable(current)
        if current.is_gradient_managed:
            raise Conflict("Gradient Managed is built in and cannot be deleted.", reason="managed-provider")
        if current.is_team_default:
            raise Conflict(
                f"{current.name!r} is the team default: make another provider the default first "
                "(storageProviders update s3 --id ID --isTeamDefault).",
                reason="default-provider",
            )
        with self._tx() as db:
            db.execute("DELETE FROM providers WHERE id = ?", (current.id,))
        self._on_change("providers")
        return current

    @staticmethod
    def _stored_default(db: sqlite3.Connection, pid: str) -> bool:
        """The registry's own default flag (a team file's default hides it in listings, but does not change it)."""
        return bool(db.execute("SELECT is_default FROM providers WHERE id = ?", (pid,)).fetchone()[0])

    @staticmethod
    def _check_name_free(db: sqlite3.Connection, name: str) -> None:
        if db.execute("SELECT 1 FROM providers WHERE name = ? COLLATE NOCASE", (name,)).fetchone():
            raise Conflict(
                f"A storage provider named {name!r} exists already: choose another name.", reason="duplicate-name"
            )

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
