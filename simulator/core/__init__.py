"""Provider-agnostic machinery: clock, ids, store, journal, webhooks, scenarios."""
