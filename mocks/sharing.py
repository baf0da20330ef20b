"""What the worker processes of one mock share (``proxyproof mock KIND --workers N``).

Workers are forked from one parent (``proxyproof.workers``), so everything here is made in the
parent before the fork and inherited:

- one process-shared lock;
- the *control document* in shared memory: the scripts (as posted), the next script id and the
  models (changed by Ollama's pull, copy and delete), written whole under the lock with a
  version number bumped; each worker keeps the parsed document and reparses only when the
  version moved (one word read per request);
- each script's ``remaining`` and ``hits`` in a shared counter slot, consumed under the lock,
  so a ``times: 1`` script answers once whichever worker gets the request;
- the next journal id, so ids rise across workers in the order requests arrived (``since``
  keeps its meaning);
- a private directory for each worker's Unix socket (``peers``): the journal stays in the worker
  that recorded it, and a control request that reads or clears it is fanned out to all.

Writes are rare (a test posts a script); reads are one lock per scripted request. Nothing here
runs in a single-process mock.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from .scripts import Script, parse_script

DOCUMENT_BYTES = 1024 * 1024  # the scripts and models, as JSON
MAX_SCRIPTS = 4096  # scripts alive at once (their counter slots)
ALWAYS = -1  # a counter slot's ``remaining`` for a script without ``times``


class SharingError(ValueError):
    """A change the shared memory cannot hold (too many or too large scripts)."""


class Sharing:
    """The shared state of one mock's workers. Make it in the parent, before the fork."""

    def __init__(self, name: str, workers: int, scripts: Sequence[Any] = (),
                 models: Sequence[str] = ()) -> None:
        context = multiprocessing.get_context("fork")
        self.name, self.workers = name, workers
        self.lock = context.Lock()
        self._version = context.RawValue("Q", 0)
        self._length = context.RawValue("Q", 0)
        self._script_count = context.RawValue("Q", 0)
        self._next_entry = context.RawValue("Q", 1)
        self._document = context.RawArray("c", DOCUMENT_BYTES)
        self.counters = context.RawArray("q", 2 * MAX_SCRIPTS)  # remaining, hits per slot
        self.directory = tempfile.mkdtemp(prefix=f"proxyproof-{name}-")
        self._cache: tuple[int, dict[str, Any]] = (-1, {})
        self.configured_scripts = tuple(scripts)
        self.configured_models = tuple(models)
        with self.lock:
            document = {"next_id": 1, "scripts": [], "models": list(models)}
            self._seed_scripts(document, self.configured_scripts)
            self._write(document)

    # --- the document ---------------------------------------------------------------------

    def socket_path(self, number: int) -> str:
        return os.path.join(self.directory, f"worker-{number}.sock")

    def remove_directory(self) -> None:
        """The parent, once its workers are gone."""
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def version(self) -> int:
        return self._version.value

    def document(self) -> tuple[int, dict[str, Any]]:
        """(version, the parsed document), reread only when another write came in between."""
        if self._cache[0] != self._version.value:
            with self.lock:
                return self.document_held()
        return self._cache

    def document_held(self) -> tuple[int, dict[str, Any]]:
        """``document()`` for a caller that holds the lock already."""
        if self._cache[0] != self._version.value:
            self._cache = (self._version.value, self._read())
        return self._cache

    def _read(self) -> dict[str, Any]:
        return json.loads(self._document.raw[: self._length.value])

    def _write(self, document: dict[str, Any]) -> None:
        data = json.dumps(document, separators=(",", ":")).encode()
        if len(data) > DOCUMENT_BYTES:
            raise SharingError(f"the scripts would take more than {DOCUMENT_BYTES} bytes of "
                               "the memory the workers share")
        self._document[: len(data)] = data
        self._length.value = len(data)
        self._script_count.value = len(document["scripts"])
        self._version.value += 1

    def change(self, how: Any) -> Any:
        """Apply ``how(document)`` (which edits it in place and returns a result) under the
        lock, and publish the document."""
        with self.lock:
            document = self._read()
            result = how(document)
            self._write(document)
            return result

    # --- scripts --------------------------------------------------------------------------

    @property
    def has_scripts(self) -> bool:
        return self._script_count.value > 0  # one aligned word: no lock needed to peek

    def _seed_scripts(self, document: dict[str, Any], specs: Sequence[Any]) -> None:
        """Replace the document's scripts with ``specs`` (under the lock)."""
        document["scripts"] = []
        for spec in specs:
            self._append_script(document, spec)

    def _append_script(self, document: dict[str, Any], spec: Any) -> Script:
        script = parse_script(document["next_id"], spec)  # ValueError: a bad script
        used = {entry["slot"] for entry in document["scripts"]}
        slot = next((s for s in range(MAX_SCRIPTS) if s not in used), None)
        if slot is None:
            raise SharingError(f"at most {MAX_SCRIPTS} scripts at once with --workers")
        remaining = ALWAYS if script.remaining is None else script.remaining
        self.counters[2 * slot], self.counters[2 * slot + 1] = remaining, 0
        document["scripts"].append({"id": script.id, "slot": slot, "spec": spec})
        document["next_id"] += 1
        return script

    def add_script(self, spec: Any) -> Script:
        return self.change(lambda document: self._append_script(document, spec))

    def reset_scripts(self) -> None:
        self.change(lambda document: self._seed_scripts(document, self.configured_scripts))

    # --- models ---------------------------------------------------------------------------

    def models(self) -> tuple[str, ...]:
        return tuple(self.document()[1]["models"])

    def set_models(self, models: Sequence[str]) -> None:
        self.change(lambda document: document.__setitem__("models", list(models)))

    # --- journal ids ----------------------------------------------------------------------

    def next_entry_id(self) -> int:
        with self.lock:
            entry_id = self._next_entry.value
            self._next_entry.value = entry_id + 1
            return entry_id

    def entry_ids_below(self) -> int:
        """The next journal id any worker will give out."""
        return self._next_entry.value


class SharedScripts:
    """``scripts.Scripts`` over a ``Sharing``: the same methods, the scripts of all workers."""

    def __init__(self, sharing: Sharing) -> None:
        self.sharing = sharing
        self._version = -1
        self._parsed: list[tuple[Script, int]] = []  # (script, counter slot), in order

    def __bool__(self) -> bool:
        return self.sharing.has_scripts

    def _scripts(self) -> list[tuple[Script, int]]:
        """The parsed scripts of the current document; the caller holds the lock, so no slot
        changes hands while it reads the counters."""
        version, document = self.sharing.document_held()
        if version != self._version:
            self._parsed = [(parse_script(entry["id"], entry["spec"]), entry["slot"])
                            for entry in document["scripts"]]
            self._version = version
        return self._parsed

    def _counted(self, script: Script, slot: int) -> Script:
        remaining = self.sharing.counters[2 * slot]
        script.remaining = None if remaining == ALWAYS else remaining
        script.hits = self.sharing.counters[2 * slot + 1]
        return script

    def add(self, spec: Any) -> Script:
        return self.sharing.add_script(spec)

    def match(self, call: Any) -> Script | None:
        """The first script that matches ``call``; one of its times is used up under the lock,
        so no two workers can both take its last one."""
        counters = self.sharing.counters
        with self.sharing.lock:
            for script, slot in self._scripts():
                if self._counted(script, slot).matches(call):
                    counters[2 * slot + 1] += 1
                    if counters[2 * slot] != ALWAYS:
                        counters[2 * slot] -= 1
                    return self._counted(script, slot)
        return None

    def all(self) -> list[Script]:
        with self.sharing.lock:
            return [self._counted(script, slot) for script, slot in self._scripts()]

    def get(self, script_id: int) -> Script | None:
        return next((s for s in self.all() if s.id == script_id), None)

    def remove(self, script_id: int) -> bool:
        def remove(document: dict[str, Any]) -> bool:
            kept = [entry for entry in document["scripts"] if entry["id"] != script_id]
            found = len(kept) != len(document["scripts"])
            document["scripts"] = kept
            return found

        return self.sharing.change(remove)

    def clear(self) -> None:
        self.sharing.change(lambda document: document.__setitem__("scripts", []))

    def reset(self) -> None:
        """Back to the scripts the mock started with (``--scripts DIR``), in one step."""
        self.sharing.reset_scripts()
