#!/bin/sh
# dracut cleanup hook (sourced just before switch_root): the shell-mode agent
# belongs to the initramfs; it must not outlive it. (Under systemd the unit
# stops by itself: Conflicts=initrd-switch-root.target.)
type vsa_argv > /dev/null 2>&1 || . /lib/vsock-agent-lib.sh

vsa_systemd || vsa_shell_stop
