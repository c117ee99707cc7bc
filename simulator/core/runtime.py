"""The Sandbox: one instance per app, holding every provider-agnostic service."""
from __future__ import annotations

import threading
from datetime import timedelta

from .clock import Clock, parse_instant
from .history import History
from .idempotency import IdempotencyKeys
from .ids import IdFactory
from .journal import Journal
from .state import NullState, StateFile
from .store import MemoryStore, SQLiteStore
from .tenants import Tenants
from .timers import Dispatcher, Timers
from .webhooks import Outbox


# where a reset under way is marked in a state file
_SPACE, _RESET = "sandbox", "reset"


class Sandbox:
    def __init__(self, *, seed=None, clock_start=None, webhooks_mode="auto", state_path=None,
                 webhook_timeout: float = 5.0) -> None:
        # everything but the journal lives in the state file when there is one
        self.state = StateFile(state_path) if state_path else NullState()
        self.clock = Clock(parse_instant(clock_start) if isinstance(clock_start, str) else clock_start, self.state)
        self.ids = IdFactory(seed, self.state)
        self.store = SQLiteStore(self.state) if state_path else MemoryStore()
        self.tenants = Tenants(self.state)
        self.journal = Journal()
        self.history = History(self.clock, lambda: self.journal.last_seq)
        self.store.observers.append(self.history.observe)
        self.store.passers.append(self.history.observe)
        self.timers = Timers(self.clock, self.state, self.ids)
        self.outbox = Outbox(self.clock, self.timers, self.ids, signer_for=self._signer_for, state=self.state,
                             timeout=webhook_timeout)
        self.idempotency = IdempotencyKeys(self.state)
        self.webhooks_mode = webhooks_mode
        self.providers: dict = {}
        self.scenarios = None  # the scenario engine, attached by the app factory
        self._dispatcher: Dispatcher | None = None
        # set when the server begins to stop: a scenario's injected delay ends there, rather than
        # holding the stop (waitress waits for its threads) for what is left of it
        self.closing = threading.Event()

    def _signer_for(self, provider: str, tenant: str):
        owner = self.providers.get(provider)
        return owner.webhook_signer(tenant) if owner is not None else None

    def now(self, tenant: str | None = None):
        return self.clock.now(tenant)

    def start_dispatcher(self) -> None:
        if self.webhooks_mode == "auto" and self._dispatcher is None:
            self._dispatcher = Dispatcher(self.timers)
            self._dispatcher.start()

    def stop_dispatcher(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.stop()
            self._dispatcher.join(timeout=2)
            self._dispatcher = None

    def set_webhooks_mode(self, mode: str) -> None:
        self.webhooks_mode = mode
        if mode == "auto":
            self.start_dispatcher()
        else:
            self.stop_dispatcher()

    def advance(self, delta: timedelta, tenant: str | None = None) -> None:
        self.timers.advance(delta, tenant)

    def reset(self, tenant: str | None = None) -> None:
        """Drop objects, deliveries, journal, rule counters and clock offsets; keep config.

        With a state file each part is cleared in a transaction of its own, so the reset is marked
        in the file first and unmarked last: a kill between the parts would leave, say, payments
        without their pending webhook retries, or idempotency keys answering with payments that are
        gone. A start that finds the mark finishes the reset (``finish_reset``) before serving."""
        self.state.put(_SPACE, _RESET, {"tenant": tenant}, now=True)
        self.timers.reset(tenant)
        self.outbox.reset(tenant)
        self.store.reset(tenant)
        self.tenants.reset(tenant)
        self.journal.reset(tenant)
        self.idempotency.reset(tenant)
        self.clock.reset(tenant)
        if tenant is None:
            # same seed after a full reset: a suite that resets between tests gets the same ids
            self.ids.reseed(self.ids.seed)
        if self.scenarios is not None:
            self.scenarios.reset_counters(tenant)
        for provider in self.providers.values():
            provider.on_reset(tenant)
        self.state.delete(_SPACE, _RESET)

    def finish_reset(self) -> bool:
        """Finish a reset a kill interrupted (see ``reset``); whether there was one. Called once the
        providers are attached, before anything is served."""
        started = self.state.get(_SPACE, _RESET)
        if started is None:
            return False
        self.reset(started["tenant"])
        return True

    def close(self) -> None:
        self.closing.set()
        self.stop_dispatcher()
        self.outbox.close()
        self.state.close()
