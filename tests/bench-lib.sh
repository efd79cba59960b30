# bench-lib.sh: what the bash parts of make bench share; sourced by
# tests/bench-exec.sh and tests/bench-ssh.sh.  Figures are printed as
# "ok - bench: ..." lines, each with its ratio to a baseline measured in
# the same run; a target that is missed is said so on its line and listed
# at the end (VS_BENCH_STRICT=1 makes it a failure).
#
# Needs VS_BIN (vsock-agent, vsock-shell, tgen, tbench) and VS_TMP.

: "${VS_BIN:?}" "${VS_TMP:?}"
VSH=$VS_BIN/vsock-shell AGENT=$VS_BIN/vsock-agent TGEN=$VS_BIN/tgen TBENCH=$VS_BIN/tbench
T=$VS_TMP
mkdir -p "$T"
pass=0 fail=0 skipped=0 missed=

ok() { echo "ok - bench: $*"; pass=$((pass + 1)); }
notok() { echo "not ok - bench: $*"; fail=$((fail + 1)); }
skip() { echo "skip - bench: $*"; skipped=$((skipped + 1)); }
finish() {
	[ -z "$missed" ] || echo "# targets missed:$missed"
	echo "$pass passed, $fail failed, $skipped skipped"
	[ "$fail" -eq 0 ]
}

# A / B, two decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# microseconds as milliseconds
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }

# target KEY TEXT RATIO OP LIMIT: TEXT with the verdict of RATIO OP LIMIT
target() {
	if awk -v r="$3" -v l="$5" "BEGIN { exit !(r $4 l) }"; then
		ok "$2 (target $4 $5: met)"
	elif [ "${VS_BENCH_STRICT:-}" = 1 ]; then
		notok "$2 (target $4 $5: missed)"
		missed="$missed $1"
	else
		ok "$2 (target $4 $5: MISSED)"
		missed="$missed $1"
	fi
}

# wait (bounded, 5 s) for a Unix socket to appear
sock_wait() {
	local i=0
	while [ ! -S "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	[ -S "$1" ]
}

# Never AF_VSOCK on this machine: every address here is unix:.
case $VSH in *" "*) echo "bench: no spaces in VS_BIN, please" >&2; exit 2 ;; esac

# agent_start NAME BIN [COUNT]: a listening agent of the build in BIN on
# unix:$T/NAME.sock; with COUNT, under perf stat, which counts its CPU
# time and system calls and those of every process it starts, reaped or
# not (the agent lets the kernel reap its sessions, so its own rusage
# would not see them).  Sets AGENT_PID (the agent) and AGENT_WAIT (what
# to wait for: perf or the agent).
agent_start() {
	local sock=$T/$1.sock
	rm -f "$sock" "$T/$1.perf"
	if [ -n "${3:-}" ]; then
		perf stat -x, -o "$T/$1.perf" -e task-clock,raw_syscalls:sys_enter -- \
			"$2/vsock-agent" --listen "unix:$sock" 2>>"$T/agent.log" &
		AGENT_WAIT=$!
		sock_wait "$sock" || return 1
		AGENT_PID=$(cat "/proc/$AGENT_WAIT/task/$AGENT_WAIT/children" 2>/dev/null)
		AGENT_PID=${AGENT_PID%% *}
	else
		"$2/vsock-agent" --listen "unix:$sock" 2>>"$T/agent.log" &
		AGENT_WAIT=$! AGENT_PID=$!
		sock_wait "$sock" || return 1
	fi
	[ -n "$AGENT_PID" ]
}

# agent_stop NAME: stop the agent; with perf, sets AGENT_CPU_US and
# AGENT_SYSCALLS (totals since agent_start)
agent_stop() {
	AGENT_CPU_US= AGENT_SYSCALLS=
	# the last session may still be ending: let it be counted
	sleep 0.2
	[ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null
	wait "$AGENT_WAIT" 2>/dev/null
	if [ -f "$T/$1.perf" ]; then
		AGENT_CPU_US=$(awk -F, '$3 == "task-clock" { printf "%d", $1 * 1000 }' "$T/$1.perf")
		AGENT_SYSCALLS=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$T/$1.perf")
	fi
	AGENT_PID= AGENT_WAIT=
}

# Can perf count the agent's CPU time and system calls here?
perf_usable() {
	command -v perf >/dev/null 2>&1 &&
		perf stat -x, -o /dev/null -e task-clock,raw_syscalls:sys_enter -- true >/dev/null 2>&1
}

# The shell the agent runs a command string with: the user's login shell.
login_shell() {
	local s
	s=$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f7)
	[ -x "${s:-/nonexistent}" ] || s=/bin/sh
	echo "$s"
}

# Room for many sessions at once.
raise_limits() {
	local h
	h=$(ulimit -Hn)
	[ "$h" = unlimited ] && h=65536
	[ "$h" -gt 65536 ] && h=65536
	ulimit -n "$h" 2>/dev/null
}
