# SPDX-License-Identifier: Apache-2.0
"""NIXL's ``nixl._utils`` test helpers over raw memory, backed by ferry."""
from __future__ import annotations

from . import _ferry


def malloc_passthru(size: int) -> int:
    """Address of `size` zeroed, page-aligned bytes (free with free_passthru)."""
    return _ferry.aligned_alloc(size)


def free_passthru(addr: int) -> None:
    _ferry.aligned_free(addr)


def ba_buf(addr: int, size: int) -> None:
    """Fills size bytes at addr with 0xba."""
    _ferry.fill(addr, size, 0xBA)


def verify_transfer(addr1: int, addr2: int, size: int) -> None:
    """Raises AssertionError unless the two ranges hold the same bytes."""
    if not _ferry.compare(addr1, addr2, size):
        raise AssertionError("transferred bytes differ")
