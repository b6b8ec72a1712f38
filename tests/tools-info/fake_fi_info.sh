#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A stand-in for fi_info (FERRY_FI_INFO) describing a host with an EFA
# device beside TCP, so that ferry-info's libfabric section is tested on
# hosts without one. The lines have fi_info 1.17's shape; it answers
# `fi_info -t FI_EP_RDM -c FI_RMA`, what ferry-info asks.
[ "$*" = "-t FI_EP_RDM -c FI_RMA" ] || { echo "unexpected arguments: $*" >&2; exit 2; }
cat <<'OUT'
provider: efa
    fabric: efa
    domain: rdmap0s6-rdm
    version: 117.0
    type: FI_EP_RDM
    protocol: FI_PROTO_EFA
provider: tcp;ofi_rxm
    fabric: 10.0.0.0/24
    domain: eth0
    version: 117.0
    type: FI_EP_RDM
    protocol: FI_PROTO_RXM
provider: tcp;ofi_rxm
    fabric: 127.0.0.1/32
    domain: lo
    version: 117.0
    type: FI_EP_RDM
    protocol: FI_PROTO_RXM
OUT
