"""What a running mock remembers: shared by its request pipeline and its control API.

A mock served by several worker processes (``sharing``) keeps its scripts and models in memory
the workers share, and its journal per worker (ids from a shared counter, each entry naming its
worker); ``peers`` fans the journal's control requests out to all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .base import MockKind, MockSettings
from .journal import Journal
from .scripts import Scripts
from .sharing import SharedScripts, Sharing


@dataclass
class MockState:
    kind: MockKind
    settings: MockSettings
    journal: Journal = field(init=False)
    scripts: Scripts | SharedScripts = field(default_factory=Scripts)
    sharing: Sharing | None = None
    worker: int | None = None  # this worker's number, when the mock has several

    def __post_init__(self) -> None:
        ids = None if self.sharing is None else self.sharing.next_entry_id
        self.journal = Journal(self.settings.journal_entries, self.settings.journal_body_bytes,
                               ids=ids, worker=self.worker)
        self.configured_models = self.settings.models
        self.configured_scripts: tuple[Any, ...] = ()
        self._models_version = -1
        if self.sharing is not None:
            self.scripts = SharedScripts(self.sharing)

    def preload_scripts(self, specs: Sequence[Any]) -> None:
        """Scripts the mock starts with (``--scripts DIR``); a reset brings them back. Shared
        ones were put in place once, by the parent, before the workers started."""
        self.configured_scripts = tuple(specs)
        if self.sharing is None:
            self.reset_scripts()

    def reset_scripts(self) -> None:
        if isinstance(self.scripts, SharedScripts):
            self.scripts.reset()
            return
        self.scripts.clear()
        for spec in self.configured_scripts:
            self.scripts.add(spec)

    def sync(self) -> None:
        """Take up a model change another worker made (a word read when there is none)."""
        if self.sharing is not None and self.sharing.version != self._models_version:
            self._models_version, document = self.sharing.document()
            models = tuple(document["models"])
            if models != self.settings.models:
                self.settings = replace(self.settings, models=models)

    def set_models(self, models: tuple[str, ...]) -> None:
        """The models this instance has from now on (``settings.models`` of later requests)."""
        self.settings = replace(self.settings, models=tuple(models))
        if self.sharing is not None:
            self.sharing.set_models(models)

    def reset_models(self) -> None:
        self.set_models(self.configured_models)
