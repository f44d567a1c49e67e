"""The catalog of datasets: list, find, create, rename and delete datasets across the team's providers, with the
create-only name claims that keep names unique per provider, and a look at the other providers that keeps
them unique per team (layout: datasets/__init__.py)."""

from __future__ import annotations

import builtins
import shlex
from dataclasses import dataclass

from .. import records
from ..errors import BadInput, Conflict, GradientError, IntegrityError, NotFound
from ..ids import DATASET_ID, check_dataset_name, check_text, new_dataset_id
from ..models import Dataset
from ..providers import Provider, now_iso
from ..records import BadRecord
from ..stores import Store
from ..uploads import end_uploads
from .base import DATASET_FORMAT, Part, log, skipped

Unsearched = list[tuple[Provider, GradientError]]  # providers a lookup could not search, and why


class Catalog(Part):
    """Datasets by id or name, in every provider of the team."""

    def _dataset_json(self, store: Store, ds_id: str) -> dict | None:
        key = self.layout.dataset_record(ds_id)
        data = self._read_json(store, key)
        return None if data is None else records.dataset(data, key, ds_id)

    def _read_claim(self, store: Store, name: str) -> dict | None:
        key = self.layout.claim(name)
        data = self._read_json(store, key)
        return None if data is None else records.claim(data, key, name)

    def _record(self, data: dict, provider: Provider) -> Dataset:
        """A Dataset from a record that `records.dataset` checked."""
        return Dataset(
            id=data["id"],
            name=data["name"],
            description=data["description"],
            storage_provider_id=provider.id,
            dt_created=data["dtCreated"],
            dt_modified=data["dtModified"],
        )

    def list(self, warnings: list | None = None) -> builtins.list[Dataset]:
        """Every dataset of the team, by name, from every provider that answers. Providers are asked in parallel
        with short timeouts (`lookup_timeout`); one that cannot be read is skipped, and a `Skipped` naming it and
        why is appended to `warnings` if given (else logged). A dataset seen through two providers on one bucket is
        listed once. A bad dataset record is skipped too, with a warning in the log naming its key."""

        def one(provider: Provider):
            try:
                return provider, self.list_in(provider, lookup=True), None
            except GradientError as exc:
                return provider, [], exc

        found, seen = [], set()
        for provider, datasets, exc in self.engine.map(one, self._providers()):
            if exc is not None:
                if warnings is not None:  # the caller tells the user: the same words once, not again in the log
                    warnings.append(Skipped(provider.id, provider.name, exc.message, exc.reason))
                else:
                    log.warning("Skipped storage provider %s while listing datasets: %s", provider.name, exc.message)
                continue
            for ds in datasets:
                if ds.id not in seen:
                    seen.add(ds.id)
                    found.append(ds)
                    self._where.setdefault(ds.id, provider.id)
        return sorted(found, key=lambda d: d.name.lower())

    def list_in(
        self, provider: Provider, *, lookup: bool = False, bad: builtins.list | None = None
    ) -> builtins.list[Dataset]:
        """The datasets of this team in one provider's bucket; bad records are skipped (their keys appended to
        `bad` if given), store errors raised. `lookup`: through the short-timeout store."""
        store = self.engine.lookup_store(provider) if lookup else self.engine.store(provider)
        prefixes = store.list_prefixes(self.layout.datasets())

        def read(prefix: str) -> dict | None:
            ds_id = prefix.rstrip("/").rsplit("/", 1)[-1]
            try:
                if not DATASET_ID.fullmatch(ds_id):
                    raise records.bad(prefix, "not a dataset id")
                return self._dataset_json(store, ds_id)  # None: an empty folder some stores keep after a delete
            except BadRecord as exc:
                skipped(exc)
                if bad is not None:
                    bad.append(prefix)
                return None

        return [self._record(data, provider) for data in self.engine.map(read, prefixes) if data]

    def get(self, ds, *, provider=None) -> Dataset:
        """A dataset by Dataset, id or name (names are case-insensitive, and unique per team).

        With `provider` (id or name), only that provider is searched. Otherwise every provider is, in parallel
        with short timeouts; if none has it but one could not be searched, the error says which and why."""
        if isinstance(ds, Dataset):
            return ds
        found, unsearched = self.find(ds, provider=provider)
        if found is not None:
            return found
        if unsearched:  # it may live there: saying "unknown" could lead to a second dataset of the same name
            provider_, exc = unsearched[0]
            raise type(exc)(
                f"Dataset {ds!r} was not found, but storage provider {provider_.name!r} could not be "
                f"searched: {exc.message}",
                reason=exc.reason,
            ) from exc
        raise NotFound(f"Unknown dataset {ds!r}: list datasets with 'datasets list'.", reason="unknown-dataset")

    def find(self, ds: str, *, provider=None) -> tuple[Dataset | None, Unsearched]:
        """(the dataset `ds`, id or name, or None; the providers that could not be searched, with why). With
        `provider`, only that one is searched; otherwise all of them at once, each bounded by `lookup_timeout`."""
        if not isinstance(ds, str) or not ds:
            raise BadInput("Give a dataset id (ds...) or name.")
        check_dataset_name(ds)
        if provider is not None:
            providers = [self.engine.registry.get(provider)]
        else:
            if not DATASET_ID.fullmatch(ds) and (found := self._by_remembered_name(ds)):
                return found, []
            if DATASET_ID.fullmatch(ds) and (found := self._by_remembered_id(ds)):
                return found, []
            providers = self._providers()
        hint = self._where.get(ds)
        providers.sort(key=lambda p: p.id != hint)
        answers = self.engine.map(lambda p: self._find_in(p, ds), providers)
        for provider_, (data, _) in zip(providers, answers, strict=True):
            if data:
                return self._remember(data, provider_), []
        return None, [(p, exc) for p, (_, exc) in zip(providers, answers, strict=True) if exc is not None]

    def _find_in(self, provider: Provider, ds: str) -> tuple[dict | None, GradientError | None]:
        """(dataset record, None) if `ds` (id or name) lives in this provider, (None, None) if not, (None, error) if
        the provider could not be searched. Lookups use the short-timeout store, and never write."""
        store = self.engine.lookup_store(provider)
        try:
            if DATASET_ID.fullmatch(ds):
                return self._dataset_json(store, ds), None
            data = self._by_claim(store, ds)
            if data:
                self.names.remember(ds, provider.id, data["id"])
            return data, None
        except (BadInput, IntegrityError):
            raise
        except GradientError as exc:
            return None, exc

    def _by_claim(self, store: Store, name: str) -> dict | None:
        """The dataset a name's claim points at, or None. A read never writes: the leftovers of an interrupted
        create or delete are finished by the next writer (`create`), not here."""
        claim = self._read_claim(store, name)
        if claim is None or claim.get("deleting"):  # a delete that was interrupted: the dataset is gone
            return None
        data = self._dataset_json(store, claim["id"])
        if data is None:  # a create interrupted after its claim (or still running): the claim holds the record
            return claim["record"]
        return data if data["name"].lower() == name.lower() else None  # a rename left this claim behind

    def remembered_provider(self, name: str) -> str | None:
        """The id of the provider where this machine last saw dataset `name`, if any (a hint, not a fact)."""
        hint = self.names.get(name)
        return hint[0] if hint else None

    def _by_remembered_name(self, name: str) -> Dataset | None:
        hint = self.names.get(name)
        if hint is None:
            return None
        try:
            provider = self.engine.registry.get(hint[0])
            data = self._dataset_json(self.engine.lookup_store(provider), hint[1])
        except GradientError:
            return None
        if data and data["name"].lower() == name.lower():
            return self._remember(data, provider)
        return None

    def _by_remembered_id(self, ds_id: str) -> Dataset | None:
        """The dataset read from the provider where it was last seen, alone: a provider that cannot be reached
        then delays no work on a dataset elsewhere (only a full search asks every provider)."""
        hint = self._where.get(ds_id) or self.names.provider_of(ds_id)
        if hint is None:
            return None
        try:
            provider = self.engine.registry.get(hint)
            data = self._dataset_json(self.engine.lookup_store(provider), ds_id)
        except GradientError:
            return None
        return self._remember(data, provider) if data else None

    def _remember(self, data: dict, provider: Provider) -> Dataset:
        self._where[data["id"]] = provider.id
        return self._record(data, provider)

    def _name_taken(
        self, name: str, provider: Provider, *, skip: str | None = None, others: bool = True
    ) -> Provider | None:
        """The provider holding another dataset (not `skip`) of that name, or None. Names are unique per team: the
        provider where the dataset will live must answer; the others are asked too, so that one name never means
        two datasets (unless `others` is false), and one that cannot be reached (or holds a damaged record) is passed
        over: it blocks nothing."""
        found, unsearched = self.find(name, provider=provider.id)
        for _, exc in unsearched:  # the dataset would live there: nothing can be written to it now
            raise type(exc)(
                f"Storage provider {provider.name!r} could not be reached to make or rename dataset {name!r} in "
                f"it: {exc.message}",
                reason=exc.reason,
            ) from exc
        if found is not None and found.id != skip:
            return provider

        def elsewhere(p: Provider) -> dict | None:
            try:
                return self._find_in(p, name)[0]
            except GradientError:
                return None

        asked = [p for p in self._providers() if p.id != provider.id] if others else []
        for other, data in zip(asked, self.engine.map(elsewhere, asked), strict=True):
            if data and data["id"] != skip:
                return other
        return None

    def create(self, name: str, *, provider=None, description: str = "", others_searched: bool = False) -> Dataset:
        """A new, empty dataset in `provider` (id or name; default: the team default). `others_searched`: the
        caller (save) has just looked for the name in every other provider, so they are not asked again."""
        check_dataset_name(name)
        check_text(description, "description")
        target = self.engine.registry.get(provider) if provider else self.engine.registry.default()
        target.check_writable("create datasets in it")
        if holder := self._name_taken(name, target, others=not others_searched):
            raise Conflict(
                f"A dataset named {name!r} exists already (in storage provider {holder.name!r}): choose another name.",
                reason="duplicate-name",
            )
        stamp = now_iso()
        data = {
            "id": new_dataset_id(),
            "name": name,
            "description": description,
            "dtCreated": stamp,
            "dtModified": stamp,
            "format": DATASET_FORMAT,
        }
        store = self.engine.store(target)
        for _ in range(2):
            try:  # the claim is the create-only write that lets exactly one creator of a name win
                self._write_json(store, self.layout.claim(name), data, mode="create")
                break
            except Conflict as exc:
                if not self._finish_leftover(store, name):
                    raise Conflict(
                        f"A dataset named {name!r} exists already: choose another name.", reason="duplicate-name"
                    ) from exc
        else:
            raise Conflict(
                f"A dataset named {name!r} is being created by another writer: choose another name or try again.",
                reason="duplicate-name",
            )
        self._write_json(store, self.layout.dataset_record(data["id"]), data)
        self.names.remember(name, target.id, data["id"])
        self.engine.changed("datasets")
        return self._remember(data, target)

    def _finish_leftover(self, store: Store, name: str) -> bool:
        """A writer met the claim of `name`: finish what an interrupted delete or create left. True if the name
        is free now (an interrupted delete was finished), False if it belongs to a dataset."""
        try:
            claim = self._read_claim(store, name)
        except BadRecord as exc:
            raise Conflict(
                f"The name {name!r} is held by a damaged claim: {exc.message}", reason="duplicate-name"
            ) from exc
        if claim is None:  # deleted a moment ago
            return True
        if claim.get("deleting"):
            self._finish_delete(store, claim["id"], name)
            return True
        if claim["record"] and self._dataset_json(store, claim["id"]) is None:  # an interrupted create: finish it
            self._write_json(
                store, self.layout.dataset_record(claim["id"]), {**claim["record"], "format": DATASET_FORMAT}
            )
        return False

    def update(self, ds, *, name: str | None = None, description: str | None = None) -> Dataset:
        current = self.writable(self.get(ds), "change its datasets")
        store = self._store_of(current)
        data = {**current.to_json(), "format": DATASET_FORMAT}
        data.pop("storageProviderId")
        if description is not None:
            check_text(description, "description")
            data["description"] = description
        if name is None or name == current.name:
            name = current.name
        renamed = name != current.name
        if renamed:
            check_dataset_name(name)
            if holder := self._name_taken(name, self.engine.registry.get(current.storage_provider_id), skip=current.id):
                raise Conflict(
                    f"A dataset named {name!r} exists already (in storage provider {holder.name!r}): choose another "
                    "name.",
                    reason="duplicate-name",
                )
            data["name"] = name
        data["dtModified"] = now_iso()
        if renamed and name.lower() != current.name.lower():
            try:
                self._write_json(store, self.layout.claim(name), data, mode="create")
            except Conflict as exc:
                raise Conflict(
                    f"A dataset named {name!r} exists already: choose another name.", reason="duplicate-name"
                ) from exc
        else:
            self._write_json(store, self.layout.claim(data["name"]), data)
        self._write_json(store, self.layout.dataset_record(current.id), data)
        if renamed and name.lower() != current.name.lower():
            store.delete([self.layout.claim(current.name)])
        self.engine.changed("datasets")
        return self._record(data, self.engine.registry.get(current.storage_provider_id))

    def delete(self, ds) -> None:
        """Delete a dataset with all its versions, files and tags.

        The name's claim is marked first, so an interrupted delete reads as deleted (and the next create of the
        name finishes it); then dataset.json goes, which hides the dataset from listings and lookups by id."""
        try:
            current = self.get(ds)
        except NotFound:
            if isinstance(ds, str) and not DATASET_ID.fullmatch(ds) and self._finish_deletes_of(ds):
                return  # an earlier delete of this name was cut short: now it is done
            raise
        self.writable(current, "delete datasets")
        store = self._store_of(current)
        claim = self._read_claim(store, current.name)
        ours = claim is not None and claim["id"] == current.id  # else the name now belongs to another dataset
        if ours:
            record = {k: v for k, v in current.to_json().items() if k != "storageProviderId"}
            self._write_json(
                store, self.layout.claim(current.name), {**record, "format": DATASET_FORMAT, "deleting": True}
            )
        store.delete([self.layout.dataset_record(current.id)])
        self._finish_delete(store, current.id, current.name if ours else None)
        self._where.pop(current.id, None)
        self.engine.changed("datasets")

    def _finish_deletes_of(self, name: str) -> bool:
        """Finish the interrupted deletes of datasets named `name`, in every provider; True if there was one."""
        found = False
        for provider in self._providers():
            store = self.engine.store(provider)
            claim = self._read_claim(store, name)
            if claim and claim["deleting"]:
                self._finish_delete(store, claim["id"], name)
                found = True
        if found:
            self.engine.changed("datasets")
        return found

    def _finish_delete(self, store: Store, ds_id: str, name: str | None) -> None:
        listing = list(store.list(self.layout.dataset(ds_id)))
        store.delete(o.key for o in listing)
        layout = self.layout
        put = any(o.key.startswith(layout.refs(ds_id, layout.version_of(ds_id, o.key))) for o in listing)
        end_uploads(self.engine, store, ds_id, put=put)  # the compat API's multipart uploads still open in it
        if name is not None:
            store.delete([self.layout.claim(name)])


@dataclass(frozen=True)
class Skipped:
    """A provider a listing could not read: which one, and why (the store's words: credentials, DNS, timeout...)."""

    provider_id: str
    provider_name: str
    message: str
    reason: str

    def __str__(self) -> str:
        return f"Warning: storage provider {self.provider_name!r} was skipped: {self.message}"

    def what_to_do(self, prog: str = "gradient-jupyter") -> str:
        """What the warning adds to the store's words, in the console, the magic (`prog` %gradient_storage) and
        REST alike (README "datasets list")."""
        check = f"{prog} storageProviders check --id {shlex.quote(self.provider_name)}"
        return f"Its datasets are missing from this list; to see what is wrong: {check}"

    def to_json(self) -> dict:
        return {
            "storageProviderId": self.provider_id,
            "storageProviderName": self.provider_name,
            "message": self.message,
            "reason": self.reason,
            "fix": self.what_to_do(),
        }
