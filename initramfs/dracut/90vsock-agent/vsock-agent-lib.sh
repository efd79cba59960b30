# vsock-agent-lib.sh (/lib in the initramfs): what the vsock-agent hooks and
# vsock-agent-shell share. POSIX sh; dracut-lib.sh gives getarg, info, warn.
# Parameters as in initramfs/README.md: vsock_agent.mode, cid, port, listen,
# allow, auth, deny, only, args, legacy, timeout (the agent reads
# vsock_agent.key itself).
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

# "a,b" -> "a b", without tr (the shell has to do).
vsa_commas() {
    vsa_ifs=$IFS
    IFS=,
    set -f
    # shellcheck disable=SC2086
    set -- $1
    set +f
    IFS=$vsa_ifs
    printf "%s\n" "$*"
}

# Is systemd PID 1? (sd_booted: a binary in the image proves nothing.)
vsa_systemd() {
    [ -d /run/systemd/system ]
}

# Transports: the loopback one always, as our /init does (with no virtio
# device it keeps CID 2 inside the guest, so nothing dials the outside);
# udev loads the virtio one when a virtio-vsock device is there.
vsa_modules() {
    modprobe -q vsock
    modprobe -q vsock_loopback
    # a key the VMM offers through fw_cfg, if it does
    [ -d /sys/firmware/qemu_fw_cfg ] || modprobe -q qemu_fw_cfg
}

# The agent's command line in vsa_cmd. MODE: shell or provision. The port
# is passed only when set, so the agent's own default applies otherwise.
# Dialing, it waits for the host (--retry) and dials again when a host goes
# without releasing it (--reconnect), as our /init does: it exits 0 only
# once a host said it is done.
vsa_argv() {
    vsa_cmd=vsock-agent
    for vsa_o in auth deny only; do
        vsa_v=$(getarg vsock_agent.$vsa_o=)
        [ -n "$vsa_v" ] && vsa_cmd="$vsa_cmd --$vsa_o $vsa_v"
    done
    vsa_cmd="$vsa_cmd $(vsa_commas "$(getarg vsock_agent.args=)")"
    vsa_listen=$(getarg vsock_agent.listen=)
    if [ "$1" = shell ] && [ -n "$vsa_listen" ]; then
        vsa_allow=$(getarg vsock_agent.allow=)
        vsa_cmd="$vsa_cmd ${vsa_allow:+--allow $vsa_allow} --listen vsock:any:$vsa_listen"
    else
        vsa_cid=$(getarg vsock_agent.cid=)
        vsa_port=$(getarg vsock_agent.port=)
        vsa_cmd="$vsa_cmd --retry --reconnect ${vsa_cid:-2}${vsa_port:+:$vsa_port}"
        [ "$(getarg vsock_agent.legacy=)" = persistent ] && vsa_cmd="$vsa_cmd persistent"
    fi
    unset vsa_o vsa_v vsa_listen vsa_allow vsa_cid vsa_port
}

# Start the shell-mode agent, respawned, unless it runs already.
vsa_shell_start() {
    if vsa_systemd; then
        systemctl --no-block start vsock-agent-initrd.service
        return
    fi
    if [ -e /run/vsock-agent/loop.pid ]; then
        read -r vsa_pid < /run/vsock-agent/loop.pid
        kill -0 "$vsa_pid" 2> /dev/null && return 0
    fi
    mkdir -p /run/vsock-agent
    : > /run/vsock-agent/run
    # Dial mode exits each time a host releases it; the cleanup hook ends the
    # loop before switch_root.
    (
        while [ -e /run/vsock-agent/run ]; do
            /sbin/vsock-agent-shell &
            echo $! > /run/vsock-agent/agent.pid
            wait $!
            sleep 1
        done
    ) < /dev/null > /dev/null 2>> /run/vsock-agent/log &
    echo $! > /run/vsock-agent/loop.pid
}

vsa_shell_stop() {
    [ -e /run/vsock-agent/run ] || return 0
    rm -f /run/vsock-agent/run
    for vsa_f in loop agent; do
        [ -e /run/vsock-agent/$vsa_f.pid ] || continue
        read -r vsa_pid < /run/vsock-agent/$vsa_f.pid
        kill "$vsa_pid" 2> /dev/null
        rm -f /run/vsock-agent/$vsa_f.pid
    done
}

# vsock_agent.timeout: the agent has no deadline of its own, so it is
# watched from here. A dial-mode agent holds its control connection for as
# long as the host serves it; while it waits, it holds a socket only during
# a connect attempt, which the kernel ends within 2 s. So once SECS have
# passed, an agent seen without a socket (fds 0-2 aside: under systemd they
# are the journal's) is still waiting: it is stopped.
vsa_has_socket() { # PID
    for vsa_f in /proc/"$1"/fd/*; do
        case ${vsa_f##*/} in 0 | 1 | 2) continue ;; esac
        [ -S "$vsa_f" ] && return 0
    done
    return 1
}

vsa_waiting() { # PID: alive (not a zombie) and holding no socket
    read -r _ _ vsa_st _ < /proc/"$1"/stat 2> /dev/null || return 1
    [ "$vsa_st" != Z ] && ! vsa_has_socket "$1"
}

vsa_watch() { # PID SECS
    sleep "$2"
    for _ in 1 2 3 4; do
        if vsa_waiting "$1"; then
            warn "vsock-agent: no host within ${2}s; giving up"
            kill "$1"
            return
        fi
        [ -e /proc/"$1" ] || return
        sleep 1
    done
}

vsa_run() { # SECS CMD...: CMD, stopped after SECS if the host has not come
    vsa_secs=$1
    shift
    case $vsa_secs in
        '' | 0) "$@"; return ;;
        *[!0-9]*)
            warn "vsock-agent: vsock_agent.timeout=$vsa_secs is not a number; no timeout"
            "$@"
            return
            ;;
    esac
    "$@" &
    vsa_pid=$!
    vsa_watch "$vsa_pid" "$vsa_secs" &
    vsa_wpid=$!
    wait "$vsa_pid"
    vsa_rc=$?
    kill "$vsa_wpid" 2> /dev/null
    return $vsa_rc
}
