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
    with pytest.raises(ValueError, match="outside"):
        protocol_name(10000, "x")
