"""Which folders may be a project's local path: inside the roots (by default the home folder of the
user the service runs as), never the service's own folders or the kernel's, never through `..`."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.errors import InvalidInputError
from app.services.workspace import checked_local_path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / "code" / "shop").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TASKSGODZILLA_LOCAL_PATH_ROOTS")  # the default, as `serve` gets it
    return home


def test_by_default_only_folders_under_home_are_taken(home: Path) -> None:
    settings = Settings(data_dir=home / ".local" / "share" / "tasksgodzilla")
    assert settings.local_path_roots is None
    assert checked_local_path(settings, str(home / "code" / "shop")) == home / "code" / "shop"
    (home / "code" / "etc").symlink_to("/etc")
    hostile = ["/etc", "/proc/self", "/tmp", str(home / "code" / "etc"), str(home), str(home / ".local"),
               str(settings.data_dir / "projects" / "other" / "repo"),
               f"{home}/code/../code/shop"]  # fmt: skip
    for path in hostile:
        with pytest.raises(InvalidInputError) as refused:
            checked_local_path(settings, path)
        assert refused.value.details == {"field": "local_path"}, path


def test_a_home_of_slash_allows_no_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/")
    monkeypatch.delenv("TASKSGODZILLA_LOCAL_PATH_ROOTS")
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(InvalidInputError, match="TASKSGODZILLA_LOCAL_PATH_ROOTS"):
        checked_local_path(settings, "/srv/repo")


def test_roots_of_slash_still_refuse_the_kernel_and_the_service(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", local_path_roots=[Path("/")])
    for path in ["/proc/self/cwd", "/sys", "/dev/shm", str(tmp_path / "data" / "postgres"), "/"]:
        with pytest.raises(InvalidInputError):
            checked_local_path(settings, path)
    (tmp_path / "repo").mkdir()
    assert checked_local_path(settings, str(tmp_path / "repo")) == (tmp_path / "repo").resolve()
