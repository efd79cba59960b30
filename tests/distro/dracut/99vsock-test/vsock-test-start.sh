#!/bin/sh
# Test only: dracut cmdline hook (sourced), without systemd.
if getarg vstest= > /dev/null; then
    /vstest/bin/busybox sh /vstest/driver < /dev/null > /dev/null 2>&1 &
fi
