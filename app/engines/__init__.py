"""Coding-agent adapters: each runs one CLI in a worktree and parses its output into an AgentResult."""
