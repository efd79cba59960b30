#!/bin/bash
# dracut module: vsock-agent in the initramfs.
# Install: cp -r initramfs/dracut/90vsock-agent /usr/lib/dracut/modules.d/
#          dracut --add vsock-agent -f   (or add_dracutmodules+=" vsock-agent "
#          in /etc/dracut.conf.d/vsock-agent.conf)
# The agent binary is found on PATH (make install puts it in /usr/local/bin).

check() {
    require_binaries vsock-agent || return 1
    # Only when asked for: it changes how the boot behaves.
    return 255
}

depends() {
    return 0
}

installkernel() {
    # virtio-pci vsock (QEMU/KVM vhost-vsock, cloud-hypervisor), loopback;
    # udev loads the virtio transport when the device shows up.
    hostonly='' instmods vsock vmw_vsock_virtio_transport vsock_loopback
}

install() {
    inst_multiple vsock-agent
    inst_multiple -o systemd-run
    # shell: agent in the background, before the root is looked for.
    inst_hook pre-mount 10 "$moddir/vsock-agent-shell.sh"
    # provision: root mounted on /sysroot, agent in the foreground.
    inst_hook pre-pivot 50 "$moddir/vsock-agent.sh"
}
