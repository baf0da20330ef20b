"""What a running mock remembers: shared by its request pipeline and its control API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .base import MockKind, MockSettings
from .journal import Journal
from .scripts import Scripts


@dataclass
class MockState:
    kind: MockKind
    settings: MockSettings
    journal: Journal = field(init=False)
    scripts: Scripts = field(default_factory=Scripts)

    def __post_init__(self) -> None:
        self.journal = Journal(self.settings.journal_entries, self.settings.journal_body_bytes)
        self.configured_models = self.settings.models
        self.configured_scripts: tuple[Any, ...] = ()

    def preload_scripts(self, specs: Sequence[Any]) -> None:
        """Scripts the mock starts with (``--scripts DIR``); a reset brings them back."""
        self.configured_scripts = tuple(specs)
        self.reset_scripts()

    def reset_scripts(self) -> None:
        self.scripts.clear()
        for spec in self.configured_scripts:
            self.scripts.add(spec)

    def set_models(self, models: tuple[str, ...]) -> None:
        """The models this instance has from now on (``settings.models`` of later requests)."""
        self.settings = replace(self.settings, models=tuple(models))

    def reset_models(self) -> None:
        self.set_models(self.configured_models)
