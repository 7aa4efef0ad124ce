# One test's scratch space (source after cluster.sh):
#
#   scratch NAME [MODE]      $TMP = /tmp/settle-NAME.XXXXXX (mode 755, or MODE), and an EXIT
#                            trap that runs the clean-ups below and removes $TMP
#                            (KEEP=1 keeps it and says where)
#   scratch_cluster DIR...   clusters to stop (immediate) at exit
#   scratch_on_exit COMMAND  a command to run at exit, before the clusters stop
#   scratch_ports VAR BASE [VAR BASE]...   free ports, each after the one before it
SCRATCH_CLUSTERS=()
SCRATCH_HOOKS=()

scratch() {
    TMP=$(mktemp -d "/tmp/settle-$1.XXXXXX")
    chmod "${2:-755}" "$TMP"
    trap scratch_cleanup EXIT
}

scratch_cluster() { SCRATCH_CLUSTERS+=("$@"); }

scratch_on_exit() { SCRATCH_HOOKS+=("$1"); }

scratch_ports() {
    local last=0 var base p
    while [ $# -ge 2 ]; do
        var=$1 base=$2
        shift 2
        [ "$base" -ge 32768 ] && base=$((base - 30000))   # as free_port does
        [ "$base" -le "$last" ] && base=$((last + 1))
        p=$(free_port "$base")
        last=$p
        eval "$var=$p"
    done
}

scratch_cleanup() {
    local h c
    for h in "${SCRATCH_HOOKS[@]}"; do eval "$h"; done
    for c in "${SCRATCH_CLUSTERS[@]}"; do cluster_stop "$c" immediate; done
    if [ -n "${KEEP:-}" ]; then echo "# kept $TMP"; else rm -rf "$TMP"; fi
}
