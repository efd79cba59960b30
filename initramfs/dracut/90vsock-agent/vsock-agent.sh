#!/bin/sh
# dracut pre-pivot hook (sourced): vsock_agent.mode=provision runs the agent
# in the foreground while the root is mounted on $NEWROOT; the boot goes on
# when the host closes. Boot with "rw" if the host is to write into the root.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

if [ "$(getarg vsock_agent.mode=)" = provision ]; then
    vsa_cid=$(getarg vsock_agent.cid=)
    vsa_port=$(getarg vsock_agent.port=)
    vsa_addr=${vsa_cid:-2}:${vsa_port:-1024}
    vsa_args=$(getarg vsock_agent.args= | tr , ' ')
    [ "$(getarg vsock_agent.legacy=)" = persistent ] && vsa_addr="$vsa_addr persistent"
    modprobe -q vsock
    udevadm settle --timeout=10
    info "vsock-agent: provisioning from $vsa_addr (root on $NEWROOT)"
    # shellcheck disable=SC2086
    if ! vsock-agent --retry $vsa_args $vsa_addr; then
        warn "vsock-agent: provisioning failed"
        emergency_shell -n vsock-agent "vsock-agent: provisioning failed"
    fi
    unset vsa_cid vsa_port vsa_addr vsa_args
fi
