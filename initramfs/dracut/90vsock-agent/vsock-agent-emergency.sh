#!/bin/sh
# dracut emergency hook (sourced before the emergency shell starts): in shell
# and provision mode, make sure an agent serves the emergency shell's
# moments, also after a failed or timed-out provisioning: a host that comes
# late still gets in.
type vsa_argv > /dev/null 2>&1 || . /lib/vsock-agent-lib.sh

case $(getarg vsock_agent.mode=) in
    shell | provision)
        vsa_modules
        vsa_shell_start
        ;;
esac
