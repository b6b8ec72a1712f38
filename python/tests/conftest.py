# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures of ferry's Python suite.

The suite imports the *installed* ferry (make test installs ./python into
build/pyenv first). Multi-process tests use multiprocessing's spawn context;
their peer functions live in peers.py. Transfers stay small: UCX RMA between
processes of one host is emulated over TCP here (~0.5 GB/s).
"""
import multiprocessing as mp
import os
import sys

import pytest

import ferry_kv as ferry

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
COMPAT_DIR = os.path.join(PYTHON_DIR, "nixl-compat")
sys.path.insert(0, HERE)  # peers.py, for spawned children too


def _has_plugin(name: str) -> bool:
    with ferry.Agent("probe") as a:
        return name in a.plugins()


HAS_UCX = _has_plugin("UCX")
needs_ucx = pytest.mark.skipif(not HAS_UCX, reason="UCX plugin not built (libucx-dev missing)")


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


HAS_CUDA = _has_cuda()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")


@pytest.fixture
def spawn():
    return mp.get_context("spawn")


@pytest.fixture
def loop_agent():
    """An agent with the LOCAL backend that knows itself (loopback)."""
    a = ferry.Agent("loop")
    a.create_backend("LOCAL")
    yield a
    a.close()


def join_all(procs, timeout=60.0):
    """Joins processes; kills and fails on a hang or a non-zero exit."""
    bad = []
    for p in procs:
        p.join(timeout)
        if p.is_alive():
            p.kill()
            p.join()
            bad.append(f"{p.name} hung")
        elif p.exitcode != 0:
            bad.append(f"{p.name} exit code {p.exitcode}")
    assert not bad, ", ".join(bad)
