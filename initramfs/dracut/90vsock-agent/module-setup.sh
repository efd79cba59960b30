#!/bin/bash
# dracut module: vsock-agent in the initramfs (initramfs/README.md, "dracut").
# Install: make install
#          cp -r initramfs/dracut/90vsock-agent /usr/lib/dracut/modules.d/
#          dracut -f --add vsock-agent
#
# dracut runs with PATH reset to DRACUT_PATH (/sbin /bin /usr/sbin /usr/bin
# unless set), which leaves out /usr/local/bin, where make install puts the
# agent: look there too, after PATH. VSOCK_AGENT=FILE names it outright.

vsa_find_agent() {
    local d
    if [[ $VSOCK_AGENT ]]; then
        [[ -x $dracutsysrootdir$VSOCK_AGENT ]] && echo "$VSOCK_AGENT"
        return
    fi
    find_binary vsock-agent && return 0
    for d in /usr/local/sbin /usr/local/bin; do
        if [[ -x $dracutsysrootdir$d/vsock-agent ]]; then
            echo "$d/vsock-agent"
            return 0
        fi
    done
    return 1
}

check() {
    if ! vsa_find_agent > /dev/null; then
        derror "vsock-agent: no vsock-agent ${VSOCK_AGENT:+at $VSOCK_AGENT }in $DRACUT_PATH /usr/local/sbin /usr/local/bin (run make install, or set VSOCK_AGENT=FILE)"
        return 1
    fi
    # Only when asked for (--add vsock-agent): it changes how the boot goes.
    return 255
}

depends() {
    return 0
}

installkernel() {
    # vsock core, the loopback transport, and the virtio one with the PCI
    # bus driver it needs (QEMU/KVM vhost-vsock, cloud-hypervisor); udev
    # loads the virtio transport when the device shows up. qemu_fw_cfg: a
    # key QEMU offers the agent (-fw_cfg name=opt/vsock-shell/key,...).
    hostonly='' instmods vsock vsock_loopback vmw_vsock_virtio_transport virtio_pci qemu_fw_cfg
}

install() {
    local agent
    agent=$(vsa_find_agent) || return 1
    inst "$agent" /usr/bin/vsock-agent
    inst_simple "$moddir/vsock-agent-lib.sh" /lib/vsock-agent-lib.sh
    inst_script "$moddir/vsock-agent-shell.sh" /sbin/vsock-agent-shell
    inst_multiple modprobe sleep
    # shell mode: the agent starts with the first hook of all, so that it
    # serves while dracut waits for the root, and whichever way the boot
    # fails; the emergency hook starts it for provision mode too.
    inst_hook cmdline 90 "$moddir/vsock-agent-cmdline.sh"
    inst_hook emergency 10 "$moddir/vsock-agent-emergency.sh"
    # provision mode: the root is mounted on /sysroot, the agent runs in
    # the foreground.
    inst_hook pre-pivot 50 "$moddir/vsock-agent-provision.sh"
    inst_hook cleanup 90 "$moddir/vsock-agent-cleanup.sh"
    # Under systemd the shell-mode agent is a unit of its own
    # (vsock-agent-initrd.service: vsock-agent.service is the booted
    # system's, from make install): a process
    # left behind by a hook's service would be stopped with it, or at the
    # isolation of emergency.target. Only then: systemd-run or systemctl in
    # an initramfs without systemd would only fail ("Failed to connect to
    # bus").
    if dracut_module_included "systemd"; then
        inst_simple "$moddir/vsock-agent-initrd.service" "$systemdsystemunitdir/vsock-agent-initrd.service"
    fi
}
