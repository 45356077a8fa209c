#!/bin/sh
# An agent that answers at once, for bench/queue.py: the `command` engine's contract in plain sh,
# with no process of its own beyond the shell (no cat, no mkdir, no $(...) subshells).
# Planning: AGENT_PLAN_STEPS step files (default 3). Execution: appends a line to bench-steps.txt in
# the worktree (a change to commit). QA: passes. The prompt on stdin is not read: the engine feeds it
# into the pipe buffer and shrugs off a closed pipe.
usage='"usage":{"input_tokens":100,"output_tokens":20}'
case "$AGENT_STAGE" in
planning)
    n=${AGENT_PLAN_STEPS:-3}
    i=1
    steps=""
    while [ "$i" -le "$n" ]; do
        if [ "$i" -lt 10 ]; then f="0$i"; else f="$i"; fi
        steps="$steps${steps:+,}{\"filename\":\"$f-part-$i.md\",\"content\":\"# Part $i\\n\\n## Goal\\nWrite part $i.\\n\"}"
        i=$((i + 1))
    done
    printf '{"final_message":"planned","structured_output":{"plan_md":"# Plan\\n","context_md":"# Context\\n","log_md":"# Log\\n","step_files":[%s]},%s}\n' "$steps" "$usage"
    ;;
execution)
    echo "step done by $$" >>bench-steps.txt
    printf '{"final_message":"step written",%s}\n' "$usage"
    ;;
qa)
    printf '{"final_message":"pass","structured_output":{"verdict":"pass","summary":"ok","findings":[]},%s}\n' "$usage"
    ;;
*)
    echo "unknown stage $AGENT_STAGE" >&2
    exit 2
    ;;
esac
