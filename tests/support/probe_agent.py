#!/usr/bin/env python3
"""An agent that tries to reach what the service keeps from agents, then works as the scripted agent.

It reads the environment of every process above it (/proc/<pid>/environ, up the parent chain), tries
to log in to the database over the socket in AGENT_PROBE_SOCKET with `psql` and no password, and
tries to read the database's password file (AGENT_PROBE_PASSWORD_FILE). What it found goes to
AGENT_PROBE_REPORT as JSON, not to its output (the service would redact that); then it becomes the
scripted agent, whose stdin (the prompt) it never touched.
"""

import json
import os
import subprocess
import sys
from pathlib import Path


def environ_of_ancestors():
    found = {}
    pid = os.getppid()
    while pid > 1:
        try:
            found[pid] = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError as exc:
            found[pid] = f"unreadable: {exc.strerror}"
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def database_login():
    socket = os.environ["AGENT_PROBE_SOCKET"]
    argv = ["psql", "-w", "-h", socket, "-U", "postgres", "-d", "postgres", "-Atc", "select current_user"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return {"exit_code": done.returncode, "said": (done.stdout + done.stderr).strip()}


def password_file():
    try:
        return Path(os.environ["AGENT_PROBE_PASSWORD_FILE"]).read_text()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


report = {
    "uid": os.getuid(),
    "environ": environ_of_ancestors(),
    "database": database_login(),
    "password_file": password_file(),
}
Path(os.environ["AGENT_PROBE_REPORT"]).write_text(json.dumps(report))
os.execv(sys.executable, [sys.executable, str(Path(__file__).with_name("scripted_agent.py"))])
