# SPDX-License-Identifier: Apache-2.0
"""The `nixl` import tree, backed by ferry (distribution ferry-kv-nixl).

Submodules nixl._api (nixl_agent, nixl_agent_config, nixl_thread_sync_t,
handles), nixl._bindings (nixlAgent, nixlAgentConfig, descriptor lists,
constants, exceptions), nixl._utils and nixl.logging are ferry_kv's NIXL
modules; their public names are also available from `nixl` itself, as NIXL's
own package arranges. nixl.BACKEND is "ferry".
"""
from ferry_kv.nixl_tree import install

install(__name__)
del install
