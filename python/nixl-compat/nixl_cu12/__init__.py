# SPDX-License-Identifier: Apache-2.0
"""`nixl_cu12`, the import name of NIXL's CUDA 12 wheel that engines also
import, backed by ferry (distribution ferry-kv-nixl): the same modules as
`nixl` (nixl_cu12._api is nixl._api, and so on)."""
from ferry_kv.nixl_tree import install

install(__name__)
del install
