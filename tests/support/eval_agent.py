#!/usr/bin/env python3
"""A `command` agent that solves the tasks of the sample eval suite (evals/sample), for tests.

It finds the task in its prompt (the shipped execution prompt names `.protocols/0001-<task>/`) and
makes the change a good agent would. EVAL_AGENT_SKIP lists tasks it leaves undone (comma-separated).
"""

import json
import os
import re
import sys
from pathlib import Path

prompt = sys.stdin.read()
task = re.search(r"\.protocols/0001-([a-z0-9-]+)/", prompt).group(1)
skipped = {name.strip() for name in os.environ.get("EVAL_AGENT_SKIP", "").split(",")}

if task in skipped:
    pass
elif task == "add-function":
    with open("calc.py", "a") as calc:
        calc.write("\n\ndef multiply(a, b):\n    return a * b\n")
    test = Path("test_calc.py")
    method = "\n    def test_multiply(self):\n        assert calc.multiply(3, 4) == 12\n"
    test.write_text(test.read_text().replace("\n\nif __name__", method + "\n\nif __name__"))
elif task == "fix-failing-test":
    source = Path("text.py")
    source.write_text(source.read_text().replace('"_"', '"-"'))
elif task == "readme-line":
    with open("README.md", "a") as readme:
        readme.write("\nRun the tests with `python3 -m unittest`.\n")

usage = {"input_tokens": 1000, "output_tokens": 50}
print(json.dumps({"final_message": f"did {task}", "usage": usage}))
