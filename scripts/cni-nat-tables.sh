#!/bin/bash
# The CNI portmap plugin (critest's and the CRI tests' pods) makes `table ip nat` and
# `table ip6 nat` with its shared CNI-HOSTPORT-* chains and never removes them. A run that
# uses the plugin asks which of them are absent before it starts (`absent`), and removes
# those at its end (`remove FAMILY...`) if nothing but the plugin's shared rules is left in
# them (a table holding anything else is someone else's too, and is kept).
set -u
case "${1:-}" in
absent)
    for family in ip ip6; do
        nft list table "$family" nat >/dev/null 2>&1 || echo "$family"
    done
    ;;
remove)
    shift
    for family in "$@"; do
        others=$(nft list table "$family" nat 2>/dev/null | awk '
            $1 == "table" || $1 == "chain" || $1 == "type" || $1 == "}" || NF == 0 { next }
            /jump CNI-HOSTPORT-(MASQ|DNAT)$/ || /mark set mark or 0x2000$/ ||
                /mark & 0x00002000 == 0x00002000 .*masquerade$/ { next }
            { print }')
        [ -z "$others" ] && nft delete table "$family" nat 2>/dev/null
    done
    exit 0
    ;;
*)
    echo "usage: $0 absent | remove FAMILY..." >&2
    exit 2
    ;;
esac
