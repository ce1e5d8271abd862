"""Shared fixtures for the cluster tier: where the micedb binary is, and scratch directories."""
import os
import pathlib

import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def micedb_bin():
    path = os.environ.get("MICEDB_BIN", str(ROOT / "build" / "debug" / "src" / "cli" / "micedb"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"micedb binary not found at {path}; build it first (make test does)")
    return path


@pytest.fixture
def cluster_factory(micedb_bin, tmp_path):
    """Starts clusters of real micedb processes; kills them all after the test."""
    from harness import Cluster

    made = []

    def make(size=3, extra_args=(), start=True):
        c = Cluster(micedb_bin, str(tmp_path / f"c{len(made)}"), size, extra_args)
        os.makedirs(c.root, exist_ok=True)
        made.append(c)
        return c.start() if start else c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def cluster(cluster_factory):
    return cluster_factory()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "big: full-size runs for `make test-big` (release build); not in make test")
