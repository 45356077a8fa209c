"""Hostile repository policy files: each refused quickly, as one problem, and the central policy applies."""

from __future__ import annotations

import time

import pytest

from app.domain.policy import REPO_LOCAL_INVALID, merge
from app.domain.policy_file import MAX_BYTES, parse_policy_file

LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
)
HOSTILE = {
    "billion laughs": ("policy.yml", LAUGHS.encode(), "anchors"),
    "50 MB": ("policy.yml", b"#" * (50 * 1024 * 1024), "larger than"),
    "10k-deep YAML flow": ("policy.yml", b"[" * 10_000 + b"]" * 10_000, "YAML"),
    "deep YAML block": (
        "policy.yml",
        "".join(f"{' ' * i}a:\n" for i in range(200)).encode(),
        "nested deeper",
    ),
    "10k-deep JSON": ("policy.json", b"[" * 10_000 + b"]" * 10_000, "nested deeper"),
    "python object tag": ("policy.yml", b"plan: !!python/object/apply:os.system [id]\n", "tags"),
    "any tag": ("policy.yml", b"plan: !!map {max_steps: 3}\n", "tags"),
    "wrong types": ("policy.yml", b"plan: {max_steps: three}\nauto_merge: 'yes'\n", "plan.max_steps"),
    "unknown key": ("policy.yml", b"plans: {}\n", "plans"),
    "not a mapping": ("policy.json", b"[1, 2]", "not a policy"),
    "repeated key": ("policy.json", b'{"auto_merge": false, "auto_merge": true}', "repeated"),
    "two documents": ("policy.yml", b"auto_merge: false\n---\nauto_merge: true\n", "one YAML document"),
    "names a setting": ("policy.yml", b"git: {commit_convention: TASKSGODZILLA_API_TOKEN}\n", "setting"),
    "interpolates": ("policy.yml", b"checks: {required: ['echo ${HOME}']}\n", "variable"),
    "not UTF-8": ("policy.yml", b"description: \xff\xfe\n", "UTF-8"),
    "too many values": ("policy.yml", ("checks:\n  required:\n" + "    - x\n" * 3000).encode(), "values"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_file_is_refused_quickly_and_the_central_policy_applies(case: str) -> None:
    name, data, why = HOSTILE[case]
    started = time.monotonic()
    layer, problems = parse_policy_file(f".tasksgodzilla/{name}", data)
    assert time.monotonic() - started < 2
    assert layer is None
    assert [p.code for p in problems] == [REPO_LOCAL_INVALID]
    assert why in problems[0].message
    assert "the central policy applies" in problems[0].message
    pack = {"plan": {"required_sections": ["Goal"]}}
    assert merge(pack, {}, layer) == merge(pack)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("policy.yml", b"plan:\n  required_sections: [Goal, Risks]\n# a comment\n"),
        ("policy.json", b'{"plan": {"required_sections": ["Goal", "Risks"]}}'),
    ],
)
def test_a_sound_file_is_a_layer(name: str, data: bytes) -> None:
    layer, problems = parse_policy_file(name, data)
    assert problems == []
    assert layer == {"plan": {"required_sections": ["Goal", "Risks"]}}


def test_an_empty_file_sets_nothing() -> None:
    assert parse_policy_file("policy.yml", b"# nothing yet\n") == ({}, [])


def test_a_file_at_the_size_cap_is_read() -> None:
    data = b"description: ok\n" + b"#" * (MAX_BYTES - 17) + b"\n"
    assert len(data) == MAX_BYTES
    assert parse_policy_file("policy.yml", data) == ({"description": "ok"}, [])
