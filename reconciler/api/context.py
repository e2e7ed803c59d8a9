"""What every route module shares: the store, the settings, the gate and the caches."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.api.auth import Gate
from reconciler.api.directory import DirectoryCache
from reconciler.api.settings import ApiSettings
from reconciler.store import Store


@dataclass
class ApiContext:
    store: Store
    settings: ApiSettings
    gate: Gate
    directory: DirectoryCache = field(default_factory=DirectoryCache)

    @classmethod
    def create(cls, store: Store, settings: ApiSettings) -> ApiContext:
        return cls(store, settings, Gate(store, settings))
