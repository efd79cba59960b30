#!/bin/sh
# dracut pre-pivot hook (sourced): vsock_agent.mode=provision runs the agent
# in the foreground while the root is mounted on $NEWROOT (boot with "rw" if
# the host is to write into it); the boot goes on when a host releases the
# agent.
# If the agent fails, or no host comes within vsock_agent.timeout=SECS, the
# boot does not go on: dracut's emergency shell, with an agent serving it.
type vsa_argv > /dev/null 2>&1 || . /lib/vsock-agent-lib.sh

if [ "$(getarg vsock_agent.mode=)" = provision ]; then
    vsa_argv provision
    vsa_modules
    udevadm settle --timeout=10
    info "vsock-agent: provisioning, root on $NEWROOT: $vsa_cmd"
    # shellcheck disable=SC2086
    if vsa_run "$(getarg vsock_agent.timeout=)" $vsa_cmd; then
        info "vsock-agent: provisioning done"
    else
        emergency_shell -n vsock-agent "vsock-agent: provisioning failed"
    fi
    unset vsa_cmd
fi
