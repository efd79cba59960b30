#!/usr/bin/env bash
# bench-boot.sh: make bench's boot section.  The time from QEMU's start to
# the agent's HELLO at the host, the minimal image (scripts/mkinitramfs
# --minimal: the agent is /init) against the busybox one (a shell /init
# that starts the agent), side by side in one run: the two booted in
# turn, VS_BENCH_BOOT_RUNS (5) times each, best and median.
#
# Under TCG the guest has only the loopback transport, so the host is in
# the guest: the same archive is appended to both images, with tests/
# tpeer as vsock_agent.controller; it listens where the agent dials
# (vsock:any:1023), sends the magic and a HELLO, and prints the agent's
# HELLO as "1 LEN". The clock stops when that line comes out of the
# serial port; QEMU is then stopped.  Both images start the controller
# before the agent, and the kernel, QEMU and the host are the same: what
# differs is the image (its size to unpack) and what /init does.
#
# Env: VS_BENCH_BOOT_RUNS (5), VS_VM_MEM (512)
# Prints "ok - bench: ..." lines and "N passed, N failed, N skipped".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
runs=${VS_BENCH_BOOT_RUNS:-5}
mem=${VS_VM_MEM:-512}
pass=0 fail=0
ok() { echo "ok - bench: $*"; pass=$((pass + 1)); }
notok() { echo "not ok - bench: $*"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed, 0 skipped"; [ "$fail" -eq 0 ]; }

for t in qemu-system-x86_64 cpio gzip; do
	command -v "$t" >/dev/null || { notok "boot: no $t (run scripts/setup)"; finish; exit; }
done
[ -x build/guest/tpeer ] || { notok "boot: no build/guest/tpeer (make guest-bins)"; finish; exit; }
kdir=$(scripts/fetch-kernel) || { notok "boot: unable to fetch the kernel"; finish; exit; }
d=build/bench-boot
rm -rf "$d"
mkdir -p "$d/o/b" "$d/o/etc"
KERNEL_DIR=$kdir scripts/mkinitramfs "$d/busybox.gz" >/dev/null &&
	KERNEL_DIR=$kdir scripts/mkinitramfs --minimal "$d/minimal.gz" >/dev/null ||
	{ notok "boot: unable to build the images"; finish; exit; }
cp build/guest/tpeer "$d/o/b/tpeer"
: >"$d/o/etc/vsock-test-guest" # tpeer uses AF_VSOCK only where this is
(cd "$d/o" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R +0:+0) | gzip -n >"$d/host.gz"
cat "$d/busybox.gz" "$d/host.gz" >"$d/busybox.img"
cat "$d/minimal.gz" "$d/host.gz" >"$d/minimal.img"

# the host's magic and HELLO: version 3, no flags, every capability, token 0
hello=ff5653481000000001000000030000003f0000000000000000000000
append="console=ttyS0 quiet panic=-1 vsock_agent.mode=provision vsock_agent.after=poweroff"
append="$append vsock_agent.controller=/b/tpeer,-l,vsock:any:1023,send:$hello,frame"

# one_boot IMAGE: the milliseconds from QEMU's start to the agent's HELLO
# at the host, or nothing (no HELLO within 30 s)
one_boot() {
	local fifo=$d/serial q t0 line ms=
	rm -f "$fifo"
	mkfifo "$fifo"
	t0=$(date +%s%N)
	qemu-system-x86_64 -machine pc -accel tcg -smp 1 -m "$mem" -display none -monitor none \
		-serial stdio -no-reboot -nic none -kernel "$kdir/vmlinux" -initrd "$1" \
		-append "$append" </dev/null >"$fifo" 2>/dev/null &
	q=$!
	exec 3<"$fifo"
	while IFS= read -r -t 30 line <&3; do
		case ${line%$'\r'} in
		"1 "[0-9]*) ms=$((($(date +%s%N) - t0) / 1000000)); break ;;
		esac
	done
	kill "$q" 2>/dev/null
	exec 3<&-
	wait "$q" 2>/dev/null
	rm -f "$fifo"
	echo "$ms"
}

# best and median of a list of numbers
stats() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%d %d", v[1], v[int((NR + 1) / 2)] }'; }

mini= busy= bad=0
for ((i = 0; i < runs; i++)); do
	m=$(one_boot "$d/minimal.img")
	b=$(one_boot "$d/busybox.img")
	[ -n "$m" ] && mini="$mini $m" || bad=$((bad + 1))
	[ -n "$b" ] && busy="$busy $b" || bad=$((bad + 1))
done
if [ "$bad" -ne 0 ] || [ -z "$mini" ] || [ -z "$busy" ]; then
	notok "boot: $bad of $((2 * runs)) boots gave no HELLO within 30 s (minimal:$mini; busybox:$busy)"
	finish
	exit
fi
read -r mb mm <<<"$(echo "$mini" | stats)"
read -r bb bm <<<"$(echo "$busy" | stats)"
msz=$((($(stat -c %s "$d/minimal.gz") + 1023) / 1024))
bsz=$((($(stat -c %s "$d/busybox.gz") + 1023) / 1024))
ok "boot: QEMU's start to the agent's HELLO at the host (TCG): minimal image ($msz KiB) ${mb} ms best, ${mm} ms median;" \
	"busybox image ($bsz KiB) ${bb} ms best, ${bm} ms median; busybox / minimal $(awk -v a="$bm" -v b="$mm" \
	'BEGIN { printf "%.2f", a / b }') (medians of $runs each, booted in turn)"
echo "# boot: minimal:$mini ms; busybox:$busy ms"
finish
