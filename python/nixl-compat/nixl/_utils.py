# SPDX-License-Identifier: Apache-2.0
"""nixl._utils on ferry: raw-memory helpers for tests and examples."""
from ferry_kv.nixl_utils import ba_buf, free_passthru, malloc_passthru, verify_transfer  # noqa: F401
