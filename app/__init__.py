"""TasksGodzilla: orchestrates AI coding agents over git repositories, durably, on Postgres."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tasksgodzilla")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
