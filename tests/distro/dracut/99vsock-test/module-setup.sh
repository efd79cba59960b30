#!/bin/bash
# Test only (tests/distro-run): the in-guest stand-in host, /vstest: a
# static busybox, the static controller and tests/distro-guest, started
# when the kernel command line has vstest=.
check() {
    return 255
}

depends() {
    return 0
}

install() {
    cp -a "$dracutsysrootdir/usr/local/lib/vsock-test" "$initdir/vstest"
    if dracut_module_included "systemd"; then
        # Wanted by sysinit.target: in the first transaction, before any
        # hook, which a slow boot may not reach before emergency mode.
        inst_simple "$moddir/vsock-test.service" "$systemdsystemunitdir/vsock-test.service"
        mkdir -p "$initdir$systemdsystemunitdir/sysinit.target.wants"
        ln -sf ../vsock-test.service "$initdir$systemdsystemunitdir/sysinit.target.wants/vsock-test.service"
    else
        inst_hook cmdline 95 "$moddir/vsock-test-start.sh"
    fi
}
