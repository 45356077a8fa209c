"""Use cases: each reads state, calls adapters, writes state and events. Called by jobs, API and CLI."""
