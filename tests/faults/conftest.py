"""Fault tests share the deploy tests' browser thread and cluster handle."""

from tests.deploy._browser import browser_thread  # noqa: F401 (a fixture)
