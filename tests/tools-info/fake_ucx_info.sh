#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A stand-in for ucx_info (FERRY_UCX_INFO) describing a host with an
# InfiniBand NIC, so that ferry-check's UCX_TLS check is tested on hosts
# without one. The lines have ucx_info 1.13's shape.
case "$1" in
-v)
    echo "# Version 1.99.0"
    echo "# Git branch 'fake', revision 0000000"
    ;;
-d)
    cat <<'OUT'
#
# Memory domain: self
#     Component: self
#
#      Transport: self
#         Device: memory0
#           Type: loopback
#  System device: <unknown>
#
# Memory domain: tcp
#     Component: tcp
#
#      Transport: tcp
#         Device: eth0
#           Type: network
#
# Memory domain: sysv
#     Component: sysv
#      Transport: sysv
#         Device: memory
#           Type: intra-node
#
# Memory domain: posix
#     Component: posix
#      Transport: posix
#         Device: memory
#           Type: intra-node
#
# Memory domain: mlx5_0
#     Component: ib
#      Transport: rc_verbs
#         Device: mlx5_0:1
#           Type: network
#
#      Transport: rc_mlx5
#         Device: mlx5_0:1
#           Type: network
#
#      Transport: ud_verbs
#         Device: mlx5_0:1
#           Type: network
#
#      Transport: ud_mlx5
#         Device: mlx5_0:1
#           Type: network
#
# Connection manager: rdmacm
#      max_conn_priv: 54 bytes
OUT
    ;;
*)
    echo "fake ucx_info: unknown option $1" >&2
    exit 1
    ;;
esac
