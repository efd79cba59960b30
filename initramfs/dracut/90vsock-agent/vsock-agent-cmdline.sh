#!/bin/sh
# dracut cmdline hook (sourced): vsock_agent.mode=shell starts the agent now,
# before udev and the wait for the root, so that the host can get in while
# the initramfs runs, including when dracut gives up on the root (in the
# initqueue, or when the root does not mount) and drops to its emergency
# shell. It stops before switch_root (the cleanup hook, or under systemd
# the unit's Conflicts=initrd-switch-root.target).
type vsa_argv > /dev/null 2>&1 || . /lib/vsock-agent-lib.sh

if [ "$(getarg vsock_agent.mode=)" = shell ]; then
    vsa_argv shell
    info "vsock-agent: $vsa_cmd"
    vsa_modules
    vsa_shell_start
fi
