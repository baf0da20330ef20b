"""What a running mock remembers: shared by its request pipeline and its control API."""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import MockKind, MockSettings
from .journal import Journal
from .scripts import Scripts


@dataclass
class MockState:
    kind: MockKind
    settings: MockSettings
    journal: Journal = field(default_factory=Journal)
    scripts: Scripts = field(default_factory=Scripts)
