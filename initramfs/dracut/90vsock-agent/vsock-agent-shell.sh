#!/bin/sh
# vsock-agent-shell (/sbin in the initramfs): one shell-mode agent, as the
# kernel command line says. vsock-agent-initrd.service runs it under systemd (and
# restarts it), vsa_shell_start's loop without.
. /lib/vsock-agent-lib.sh
vsa_modules
vsa_argv shell
# shellcheck disable=SC2086
exec $vsa_cmd
