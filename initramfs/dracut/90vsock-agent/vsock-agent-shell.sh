#!/bin/sh
# dracut pre-mount hook (sourced): vsock_agent.mode=shell starts the agent in
# the background, so the host can get in while the initramfs runs, including
# when dracut gives up on the root and drops to its emergency shell.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

if [ "$(getarg vsock_agent.mode=)" = shell ]; then
    vsa_bin=$(command -v vsock-agent)
    vsa_args=$(getarg vsock_agent.args= | tr , ' ')
    vsa_listen=$(getarg vsock_agent.listen=)
    vsa_allow=$(getarg vsock_agent.allow=)
    if [ -n "$vsa_listen" ]; then
        vsa_cmd="$vsa_bin ${vsa_allow:+--allow $vsa_allow} $vsa_args --listen vsock:any:$vsa_listen"
    else
        vsa_cid=$(getarg vsock_agent.cid=)
        vsa_port=$(getarg vsock_agent.port=)
        vsa_addr=${vsa_cid:-2}:${vsa_port:-1024}
        vsa_cmd="$vsa_bin --retry $vsa_args $vsa_addr"
    fi
    modprobe -q vsock
    udevadm settle --timeout=10
    info "vsock-agent: $vsa_cmd"
    # shellcheck disable=SC2086
    if command -v systemd-run >/dev/null 2>&1; then
        # A transient unit outlives this hook's service; dial mode exits
        # each time the host closes, hence the restart.
        systemd-run --unit=vsock-agent -p Restart=always -p RestartSec=3 $vsa_cmd
    else
        (while :; do $vsa_cmd; sleep 1; done) </dev/null >/dev/null 2>>/run/vsock-agent.log &
    fi
    unset vsa_bin vsa_args vsa_listen vsa_allow vsa_cid vsa_port vsa_addr vsa_cmd
fi
