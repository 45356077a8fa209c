from __future__ import annotations

import inspect

import pytest

import app.errors as errors
from app.errors import ERROR_TABLE, ConflictError, StaleWriteError, TasksGodzillaError, spec_for

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, TasksGodzillaError) and cls.__module__ == errors.__name__
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_has_its_own_row(cls):
    assert cls in ERROR_TABLE
    spec = spec_for(cls("boom"))
    assert 400 <= spec.http_status <= 599
    assert 1 <= spec.exit_code <= 125


def test_codes_are_unique_and_the_tree_is_drawn_in_the_docstring():
    codes = [spec.code for spec in ERROR_TABLE.values()]
    assert len(codes) == len(set(codes))
    for cls in ERROR_CLASSES:
        assert cls.__name__ in errors.__doc__


def test_lookup_follows_the_ancestry_and_unknown_errors_are_internal():
    class Narrower(StaleWriteError):
        pass

    assert spec_for(Narrower("x")).code == "stale_write"
    assert spec_for(ConflictError("x")).http_status == 409
    assert spec_for(ValueError("x")).http_status == 500
    assert TasksGodzillaError("m", field="name").details == {"field": "name"}
