#!/usr/bin/env python3
"""A tiny command-line agent for tests and benchmarks, speaking the `command` engine's contract.

Planning: answers a two-step plan (or AGENT_PLAN_STEPS steps). Execution: writes `work/NN.txt` in the
worktree ("step N", or "step N fixed" when its prompt carries QA's failed verdict, an operator's
note or review comments: its answer then gives one `done` reply per comment id) and appends to
log.md; steps listed in AGENT_NO_CHANGE change nothing. QA: passes, unless the
step's number is in AGENT_QA_FAIL (comma-separated) and its work is not "fixed".
AGENT_SLEEP makes execution slow (seconds), for crash tests. AGENT_FAIL_STAGE makes that stage exit 1.
AGENT_PROMPT_LOG names a file each prompt is appended to (as one JSON line with its stage and the
CORRELATION_ID the agent was given).
AGENT_HANG_ONCE names a folder: the first execution of each step writes its pid there (file
`<protocol>-<NN>`) and hangs until killed; later ones work normally (fault tests kill the worker).
AGENT_GATE names a folder: an execution of step N while a file `NN` is there writes its pid to
`NN.pid` and waits until that file is gone (fault tests hold a step's agent while they break things).
AGENT_LEAK_PLAN and AGENT_LEAK_QA: text added to the plan's plan.md and to QA's summary (secret tests
make the agent repeat a secret, as one that found it in the repository would); AGENT_LEAK_FILES: text
an execution adds to its `work/NN.txt` and writes into a binary file `work/NN.bin` (not UTF-8).
AGENT_TOKENS: the input tokens each answer reports (default 100; output is always 20 more).
"""

import json
import os
import re
import sys
import time
from pathlib import Path

prompt = sys.stdin.read()
stage = os.environ.get("AGENT_STAGE", "")
if os.environ.get("AGENT_PROMPT_LOG"):
    with open(os.environ["AGENT_PROMPT_LOG"], "a") as prompts:
        seen = {"stage": stage, "prompt": prompt, "correlation_id": os.environ.get("CORRELATION_ID")}
        prompts.write(json.dumps(seen) + "\n")
if stage == os.environ.get("AGENT_FAIL_STAGE"):
    print(f"scripted failure in {stage}", file=sys.stderr)
    sys.exit(1)


def listed(variable, number):
    return str(int(number)) in {s.strip() for s in os.environ.get(variable, "").split(",") if s.strip()}


def answer(structured=None, message="done"):
    print(
        json.dumps(
            {
                "final_message": message,
                "structured_output": structured,
                "usage": {"input_tokens": int(os.environ.get("AGENT_TOKENS", "100")), "output_tokens": 20},
            }
        )
    )


if stage == "planning":
    count = int(os.environ.get("AGENT_PLAN_STEPS", "2"))
    steps = [
        {
            "filename": f"{i:02d}-part-{i}.md",
            "content": f"# Part {i}\n\n## Goal\nWrite part {i} in `work/{i:02d}.txt`.\n",
        }
        for i in range(1, count + 1)
    ]
    answer(
        {
            "plan_md": "# Plan\n\nTwo parts.\n" + os.environ.get("AGENT_LEAK_PLAN", ""),
            "context_md": "# Context\n",
            "log_md": "# Log\n",
            "step_files": steps,
        }
    )
elif stage == "execution":
    number = re.search(r"\(step (\d+):", prompt).group(1)
    folder = re.search(r"`\.protocols/([^/`]+)/", prompt).group(1)
    if hangs := os.environ.get("AGENT_HANG_ONCE"):
        try:
            with open(Path(hangs, f"{folder}-{number}"), "x") as mark:
                mark.write(str(os.getpid()))
        except FileExistsError:
            pass
        else:
            time.sleep(3600)
    if gate := os.environ.get("AGENT_GATE"):
        held = Path(gate, f"{int(number):02d}")
        if held.exists():
            Path(gate, f"{held.name}.tmp").write_text(str(os.getpid()))
            os.replace(Path(gate, f"{held.name}.tmp"), Path(gate, f"{held.name}.pid"))  # read whole
            while held.exists():
                time.sleep(0.05)
    time.sleep(float(os.environ.get("AGENT_SLEEP", "0")))
    if listed("AGENT_NO_CHANGE", number):
        answer(message=f"step {number}: nothing needed changing")
        sys.exit(0)
    reviewed = re.findall(r'<reviewer-comment id="([a-z]+-\d+)">', prompt)
    reworked = "## QA failed the previous commit" in prompt or "## The operator's note" in prompt
    fixed = reworked or bool(reviewed)
    Path("work").mkdir(exist_ok=True)
    leak = os.environ.get("AGENT_LEAK_FILES", "")
    Path("work", f"{number}.txt").write_text(f"step {number}{' fixed' if fixed else ''}\n{leak}")
    if leak:
        Path("work", f"{number}.bin").write_bytes(b"\xff\0" + leak.encode() + b"\0")
    with open(f".protocols/{folder}/log.md", "a") as log:
        log.write(f"- step {number} done\n")
    replies = [{"comment_id": i, "answer": "done", "text": f"changed as asked in {i}"} for i in reviewed]
    answer({"replies": replies} if reviewed else None, message=f"step {number} written")
elif stage == "discovery":
    print(f"# Repository\n\nFiles: {', '.join(sorted(p.name for p in Path('.').iterdir()))}")
elif stage == "qa":
    number = re.search(r"\(step (\d+):", prompt).group(1)
    work = Path("work", f"{number}.txt")
    fixed = work.exists() and "fixed" in work.read_text()
    verdict = "fail" if listed("AGENT_QA_FAIL", number) and not fixed else "pass"
    findings = [{"severity": "error", "message": f"part {number} is wrong", "file": str(work)}]
    answer(
        {
            "verdict": verdict,
            "summary": f"step {number}: {verdict} ({work})" + os.environ.get("AGENT_LEAK_QA", ""),
            "findings": findings if verdict == "fail" else [],
        }
    )
else:
    print(f"unknown stage {stage!r}", file=sys.stderr)
    sys.exit(2)
