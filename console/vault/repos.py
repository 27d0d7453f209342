"""Typed access to the vault's tables.

Each table maps our own key (an id, or ``agent|server|tool`` for a grant) to a record
dumped from its pydantic model, so reads and writes by key are dictionary look-ups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from tinydb.table import Document, Table

from console.errors import NotFound
from console.model import (
    Agent,
    Connection,
    OAuthApp,
    Orphan,
    Secret,
    ServerInstance,
    Toolbox,
    ToolboxGrant,
    ToolDef,
    ToolGrant,
)
from console.vault.store import VaultDB

M = TypeVar("M", bound=BaseModel)


def upsert(table: Table, key: str, doc: dict[str, Any]) -> None:
    """Store ``doc`` under ``key``, replacing (not merging into) what was there."""
    if table.contains(doc_id=key):

        def replace(stored: dict[str, Any]) -> None:
            stored.clear()
            stored.update(doc)

        table.update(replace, doc_ids=[key])
    else:
        table.insert(Document(doc, doc_id=key))


class Repo(Generic[M]):
    table_name: str
    model: type[M]

    def __init__(self, db: VaultDB) -> None:
        self.db = db

    @property
    def table(self) -> Table:
        return self.db.table(self.table_name)

    @staticmethod
    def key_of(item: M) -> str:
        return item.id  # type: ignore[attr-defined]

    def raw(self) -> dict[str, dict[str, Any]]:
        """The stored documents by key, unvalidated: for hot paths that read thousands."""
        return self.db.storage.read().get(self.table_name, {})  # type: ignore[union-attr]

    def get(self, key: str) -> M | None:
        doc = self.raw().get(key)
        return None if doc is None else self.model.model_validate(doc)

    def __iter__(self) -> Iterator[M]:
        validate = self.model.model_validate
        return (validate(doc) for doc in self.raw().values())

    def all(self) -> list[M]:
        return list(self)

    def where(self, predicate: Callable[[dict[str, Any]], bool]) -> list[M]:
        validate = self.model.model_validate
        return [validate(doc) for doc in self.raw().values() if predicate(doc)]

    def put(self, item: M) -> M:
        upsert(self.table, self.key_of(item), item.model_dump(mode="json"))
        return item

    def put_many(self, items: Iterable[M]) -> None:
        """Insert many new records in one table rewrite (bulk seeding, imports)."""
        self.table.insert_multiple(
            Document(item.model_dump(mode="json"), doc_id=self.key_of(item)) for item in items
        )

    def delete(self, keys: Iterable[str]) -> int:
        present = [key for key in keys if key in self.raw()]
        if present:
            self.table.remove(doc_ids=present)
        return len(present)


class _Named(Repo[M]):
    kind: str

    def by_name(self, name: str) -> M | None:
        for doc in self.raw().values():
            if doc["name"] == name:
                return self.model.model_validate(doc)
        return None

    def require(self, name: str) -> M:
        found = self.by_name(name)
        if found is None:
            raise NotFound(f"no {self.kind} named {name!r}; 'tbx {self.kind} list' shows them")
        return found


class Toolboxes(_Named[Toolbox]):
    table_name, model, kind = "toolboxes", Toolbox, "toolbox"


class Agents(_Named[Agent]):
    table_name, model, kind = "agents", Agent, "agent"

    def by_token_hash(self, token_hash: str) -> Agent | None:
        for doc in self.raw().values():
            if doc["token_hash"] == token_hash:
                return Agent.model_validate(doc)
        return None


class Servers(Repo[ServerInstance]):
    table_name, model = "servers", ServerInstance

    def in_toolbox(self, toolbox_id: str) -> list[ServerInstance]:
        return self.where(lambda doc: doc["toolbox"] == toolbox_id)

    def by_name(self, toolbox_id: str, name: str) -> ServerInstance | None:
        found = self.where(lambda doc: doc["toolbox"] == toolbox_id and doc["name"] == name)
        return found[0] if found else None


class Tools(Repo[ToolDef]):
    table_name, model = "tools", ToolDef

    @staticmethod
    def key_of(item: ToolDef) -> str:
        return item.key

    def of_server(self, server_id: str) -> list[ToolDef]:
        return self.where(lambda doc: doc["server"] == server_id)


class ToolboxGrants(Repo[ToolboxGrant]):
    table_name, model = "toolbox_grants", ToolboxGrant

    @staticmethod
    def key_of(item: ToolboxGrant) -> str:
        return item.key


class ToolGrants(Repo[ToolGrant]):
    table_name, model = "tool_grants", ToolGrant

    @staticmethod
    def key_of(item: ToolGrant) -> str:
        return item.key

    def of_agent(self, agent_id: str) -> list[ToolGrant]:
        return self.where(lambda doc: doc["agent"] == agent_id)


class Connections(Repo[Connection]):
    table_name, model = "connections", Connection


class OAuthApps(Repo[OAuthApp]):
    table_name, model = "oauth_apps", OAuthApp

    def for_provider(self, provider: str) -> OAuthApp | None:
        found = self.where(lambda doc: doc["provider"] == provider)
        return found[0] if found else None


class Secrets(Repo[Secret]):
    table_name, model = "secrets", Secret


class Orphans(Repo[Orphan]):
    table_name, model = "orphans", Orphan

    @staticmethod
    def key_of(item: Orphan) -> str:
        return str(item.droplet_id)


class Meta:
    """Single named documents: the audit key and checkpoint, settings kept in the vault."""

    table_name = "meta"

    def __init__(self, db: VaultDB) -> None:
        self.db = db

    def get(self, key: str) -> dict[str, Any] | None:
        doc = self.db.storage.read().get(self.table_name, {}).get(key)  # type: ignore[union-attr]
        return None if doc is None else dict(doc)

    def set(self, key: str, value: dict[str, Any]) -> None:
        upsert(self.db.table(self.table_name), key, value)

    def delete(self, key: str) -> None:
        table = self.db.table(self.table_name)
        if table.contains(doc_id=key):
            table.remove(doc_ids=[key])


class Repos:
    """Every table of one vault, typed."""

    def __init__(self, db: VaultDB) -> None:
        self.toolboxes = Toolboxes(db)
        self.servers = Servers(db)
        self.tools = Tools(db)
        self.agents = Agents(db)
        self.toolbox_grants = ToolboxGrants(db)
        self.tool_grants = ToolGrants(db)
        self.connections = Connections(db)
        self.oauth_apps = OAuthApps(db)
        self.secrets = Secrets(db)
        self.orphans = Orphans(db)
        self.meta = Meta(db)
