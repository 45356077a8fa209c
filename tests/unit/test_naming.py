import pytest

from app.domain.naming import protocol_name, slugify


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Add login page", "add-login-page"),
        ("  Fix: the   CI!! ", "fix-the-ci"),
        ("Café déjà vu", "cafe-deja-vu"),
        ("../../etc/passwd", "etc-passwd"),
        ("日本語", "task"),
        ("", "task"),
        ("a" * 100, "a" * 48),
    ],
)
def test_slugify(title, slug):
    assert slugify(title) == slug


def test_protocol_name():
    assert protocol_name(7, "add-login") == "0007-add-login"
    assert protocol_name(10_000, "busy") == "10000-busy"  # past 9,999 the number grows; older names stay
    with pytest.raises(ValueError, match="outside"):
        protocol_name(100_000_000, "x")


@pytest.mark.parametrize(
    ("title", "complaint"),
    [
        ("", "required"),
        ("   ", "required"),
        ("x" * 10_000, "longer than 200"),
        ("two\nlines", "one line"),
        ("nul\x00byte", "one line"),
        ("../../etc/passwd", "file path"),
        ("fix ../secrets", "file path"),
        ("/etc/passwd", "file path"),
        ("~/notes", "file path"),
        ("C:\\Windows", "file path"),
        ("..\\boot.ini", "file path"),
    ],
)
def test_bad_task_titles_are_refused(title, complaint):
    from app.domain.naming import check_task_title
    from app.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=complaint) as raised:
        check_task_title(title)
    assert raised.value.details == {"field": "title"}


@pytest.mark.parametrize(
    "title", ["Add login page", "Speed up ..rc parsing", "Use a/b testing", "Fix 2..3 range bug"]
)
def test_ordinary_titles_pass(title):
    from app.domain.naming import check_task_title

    assert check_task_title(f"  {title} ") == title
