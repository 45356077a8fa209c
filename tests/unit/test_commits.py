import pytest

from app.domain.commits import (
    SUBJECT_MAX,
    StepTag,
    clean_subject,
    format_step_commit,
    parse_step_tag,
    planning_commit,
    step_tag,
)
from app.errors import InvalidInputError


@pytest.mark.parametrize(
    ("number", "step_index", "tag"),
    [
        (7, 3, "[protocol-0007/03]"),
        (1, 0, "[protocol-0001/00]"),
        (9999, 99, "[protocol-9999/99]"),
        (10000, 1, "[protocol-10000/01]"),
        (99_999_999, 2, "[protocol-99999999/02]"),
    ],
)
def test_step_tag(number, step_index, tag):
    assert step_tag(number, step_index) == tag
    assert parse_step_tag(f"feat: x {tag}") == (number, step_index)


@pytest.mark.parametrize(
    ("number", "step_index", "field"),
    [
        (0, 1, "number"),
        (100_000_000, 1, "number"),
        (-1, 1, "number"),
        (1, -1, "step_index"),
        (1, 100, "step_index"),
    ],
)
def test_step_tag_out_of_range(number, step_index, field):
    with pytest.raises(InvalidInputError) as caught:
        step_tag(number, step_index)
    assert caught.value.details == {"field": field}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"commit_type": "feat", "subject": "add login", "scope": "api"},
            "feat(api): add login [protocol-0007/03]",
        ),
        ({"commit_type": "fix", "subject": "null check"}, "fix: null check [protocol-0007/03]"),
        (
            {"commit_type": "chore", "subject": "line one\nline two\r\n\tand\x00 a NUL"},
            "chore: line one line two and a NUL [protocol-0007/03]",
        ),
        ({"commit_type": "docs", "subject": "  spaced   out  "}, "docs: spaced out [protocol-0007/03]"),
        (
            {"commit_type": "test", "subject": "bell\x07 and escape\x1b[31m red"},
            "test: bell and escape [31m red [protocol-0007/03]",
        ),
        (
            {"commit_type": "refactor", "subject": "x", "scope": "a/b.c_d-e"},
            "refactor(a/b.c_d-e): x [protocol-0007/03]",
        ),
    ],
)
def test_format_step_commit(kwargs, message):
    assert format_step_commit(number=7, step_index=3, **kwargs) == message


def test_a_long_subject_is_capped_on_one_line():
    message = format_step_commit("feat", "word " * 100, number=7, step_index=3)
    subject = message.removeprefix("feat: ").removesuffix(" [protocol-0007/03]")
    assert len(subject) == SUBJECT_MAX
    assert subject.endswith("…")
    assert "\n" not in message
    assert parse_step_tag(message) == (7, 3)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"commit_type": "feature", "subject": "x"}, "type"),
        ({"commit_type": "FEAT", "subject": "x"}, "type"),
        ({"commit_type": "feat", "subject": " \n\t "}, "subject"),
        ({"commit_type": "feat", "subject": ""}, "subject"),
        ({"commit_type": "feat", "subject": "x", "scope": ""}, "scope"),
        ({"commit_type": "feat", "subject": "x", "scope": "Has Space"}, "scope"),
        ({"commit_type": "feat", "subject": "x", "scope": "a)b"}, "scope"),
        ({"commit_type": "feat", "subject": "x", "scope": "-lead"}, "scope"),
        ({"commit_type": "feat", "subject": "x", "scope": "a" * 41}, "scope"),
    ],
)
def test_format_step_commit_refuses(kwargs, field):
    with pytest.raises(InvalidInputError) as caught:
        format_step_commit(number=7, step_index=3, **kwargs)
    assert caught.value.details == {"field": field}


def test_planning_commit_is_step_00():
    message = planning_commit("plan add login", number=12)
    assert message == "docs(plan): plan add login [protocol-0012/00]"
    assert parse_step_tag(message) == StepTag(number=12, step_index=0)


@pytest.mark.parametrize(
    ("message", "parsed"),
    [
        ("feat: x [protocol-0007/03]", (7, 3)),
        ("feat: x [protocol-0007/03]  ", (7, 3)),
        ("feat: x [protocol-0007/03]\n\nbody", (7, 3)),
        ("feat: [protocol-0001/01] mentioned [protocol-0002/02]", (2, 2)),
        ("feat: mentioned [protocol-0001/01] only in the middle", None),
        ("chore: x\n\nbody [protocol-0007/03]", None),
        ("feat: x [protocol-7/3]", None),
        ("feat: x [protocol-00007/03]", None),
        ("feat: x [protocol-0000/03]", None),
        ("feat: x [Protocol-0007/03]", None),
        ("feat: x (protocol-0007/03)", None),
        ("", None),
    ],
)
def test_parse_step_tag(message, parsed):
    assert parse_step_tag(message) == parsed


@pytest.mark.parametrize(
    ("subject", "cleaned"),
    [("a\u2028b", "a b"), ("tab\tsep", "tab sep"), ("zero\u200bwidth", "zero width"), ("ok", "ok")],
)
def test_clean_subject_removes_invisible_and_control_characters(subject, cleaned):
    assert clean_subject(subject) == cleaned
