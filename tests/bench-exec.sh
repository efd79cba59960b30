#!/usr/bin/env bash
# bench-exec.sh - sessions, on this machine over unix: sockets, each figure
# against a baseline measured in the same run (make bench runs it):
#
#   VS_BIN=DIR VS_TMP=DIR bash tests/bench-exec.sh [exec] [procs] [conc] [sess]
#
# exec   round trip of `true` through vsock-shell against a listening agent,
#        against the same command string run here by the same shell the
#        agent runs it with (the user's login shell); median of N rounds,
#        the commands taking turns
# procs  the same round trip, and the CPU time and system calls of the
#        agent and of all it starts, per session, with VS_BENCH_PROCS idle
#        processes on the machine against without them
# conc   VS_BENCH_CONC (and 200) sessions at once against as many one
#        after another, and against the local command at once; every one
#        must succeed
# sess   sessions that outlive their connection: the throughput of a
#        detachable session (the default) against a --no-detach one, each
#        moving VS_BENCH_SESS_MB of output (tgen), median of
#        VS_BENCH_SESS_RUNS, taking turns; then what a resume costs: a
#        relay (tcut) in front of the agent cuts the connection once in
#        the middle of a VS_BENCH_RESUME_MB stream, and the controller's
#        longest pause at its stdout (from the last byte before the cut to
#        the first resumed one, as tbench -w sees it, in the MiB before
#        the cut, where the stream resumes) is set against a
#        fresh session's round trip (`true`) through the same relay;
#        median of VS_BENCH_SESS_RUNS, each output checked byte for byte
#
# Env: VS_BENCH_N      exec rounds (default 500)
#      VS_BENCH_PROCS  idle processes (default 2000); VS_BENCH_PROCS_N rounds (200)
#      VS_BENCH_OLD=DIR   procs also against the build in DIR (vsock-agent,
#                      vsock-shell), e.g. /work/old/bin, side by side
#      VS_BENCH_CONC   sessions at once (default 1000)
#      VS_BENCH_SESS_MB   output per throughput run (default 1024);
#      VS_BENCH_RESUME_MB per resume run (64); VS_BENCH_SESS_RUNS (5)
#      VS_BENCH_STRICT=1  a missed target fails
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"

N=${VS_BENCH_N:-500}
NPROCS=${VS_BENCH_PROCS:-2000}
PN=${VS_BENCH_PROCS_N:-200}
CONC=${VS_BENCH_CONC:-1000}
SESS_MB=${VS_BENCH_SESS_MB:-1024}
RES_MB=${VS_BENCH_RESUME_MB:-64}
SRUNS=${VS_BENCH_SESS_RUNS:-5}
TCUT=$VS_BIN/tcut
SH=$(login_shell)
raise_limits
export TBENCH_LIMIT=${TBENCH_LIMIT:-240}
# a pause after each timed run: what a session leaves running on the server
# side once the client has its status is not charged to the next run
export TBENCH_GAP_MS=${TBENCH_GAP_MS:-5}

idle_pid='' cut_pid=''
cleanup() {
	[ -n "$idle_pid" ] && kill "$idle_pid" 2>/dev/null && wait "$idle_pid" 2>/dev/null
	[ -n "$cut_pid" ] && kill "$cut_pid" 2>/dev/null
	[ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null
}
trap cleanup EXIT

nprocs() { set -- /proc/[0-9]*; echo $#; }

bench_exec() {
	local a r ours argv local_sh local_true start static st f1 f2 f3 f4 f5
	agent_start exec "$VS_BIN" || { notok "exec: unable to start the agent"; return; }
	a=unix:$T/exec.sock
	# warm up (page cache, the agent's first fork)
	"$TBENCH" -r 20 "$VSH" -n "$a" -- true >/dev/null
	# and, where there is one, a static build of the controller (the
	# guest's, musl): what a dynamic executable's start costs
	st=()
	[ -x "${VS_BENCH_STATIC_VSH:-}" ] && st=(:: "$VS_BENCH_STATIC_VSH" -n "$a" -- true)
	r=$("$TBENCH" -r "$N" "$SH" -c true :: "$VSH" -n "$a" -- true :: \
		/bin/true :: "$VSH" -n --argv "$a" -- true :: "$VSH" -V "${st[@]}")
	agent_stop exec
	{ read -r local_sh _ f1; read -r ours _ f2; read -r local_true _ f3
	  read -r argv _ f4; read -r start _ _; read -r static _ f5; } <<<"$r"
	if [ -z "$start" ] || [ $((f1 + f2 + f3 + f4 + ${f5:-0})) -ne 0 ]; then
		notok "exec: round trips failed ($r)"
		return
	fi
	ok "exec: local '$SH -c true'  $(ms "$local_sh")  (baseline, median of $N)"
	target exec-rtt "exec: vsock-shell -- true  $(ms "$ours")  $(ratio "$ours" "$local_sh")x the local command" \
		"$(ratio "$ours" "$local_sh")" '<=' 1.50
	ok "exec: vsock-shell --argv true  $(ms "$argv")  $(ratio "$argv" "$local_true")x a local /bin/true ($(ms "$local_true"))"
	ok "exec: of which starting vsock-shell (-V)  $(ms "$start")  $(ratio "$start" "$ours") of the round trip"
	[ -n "${static:-}" ] &&
		ok "exec: the same with a static vsock-shell (musl, $VS_BENCH_STATIC_VSH)  $(ms "$static")  $(ratio "$static" "$local_sh")x the local command"
}

# procs_phase LABEL: for each build, the round trip (against the local
# command, as a control for the machine's noise) and, with perf, CPU and
# system calls per session; into res_<build>_<LABEL>
procs_phase() {
	local label=$1 b dir r rt lc
	for b in $builds; do
		eval "dir=\$dir_$b"
		agent_start "procs-$b" "$dir" $counting || { notok "procs: unable to start the $b agent"; continue; }
		"$TBENCH" -r 10 "$dir/vsock-shell" -n "unix:$T/procs-$b.sock" -- true >/dev/null
		agent_stop "procs-$b"
		agent_start "procs-$b" "$dir" $counting || { notok "procs: unable to start the $b agent"; continue; }
		r=$("$TBENCH" -r "$PN" "$dir/vsock-shell" -n "unix:$T/procs-$b.sock" -- true :: "$SH" -c true)
		agent_stop "procs-$b"
		{ read -r rt _ f1; read -r lc _ f2; } <<<"$r"
		[ "$((f1 + f2))" -eq 0 ] || notok "procs: $b build, $label: $f1 sessions failed"
		eval "res_${b}_$label='$rt $lc ${AGENT_CPU_US:-} ${AGENT_SYSCALLS:-}'"
	done
}

# shellcheck disable=SC2120,SC2034
bench_procs() {
	local b n0 n1 rt0 lc0 cpu0 sc0 rt1 lc1 cpu1 sc1 what i norm
	builds=cur dir_cur=$VS_BIN
	if [ -n "${VS_BENCH_OLD:-}" ]; then
		if [ -x "$VS_BENCH_OLD/vsock-agent" ] && [ -x "$VS_BENCH_OLD/vsock-shell" ]; then
			builds="cur old" dir_old=$VS_BENCH_OLD
		else
			notok "procs: no vsock-agent and vsock-shell in VS_BENCH_OLD=$VS_BENCH_OLD"
		fi
	fi
	counting=
	if perf_usable; then counting=1; else skip "procs: agent CPU time and system calls (perf stat unusable here)"; fi
	n0=$(nprocs)
	procs_phase none
	rm -f "$T/idle.out"
	"$TBENCH" -i "$NPROCS" 600 >"$T/idle.out" &
	idle_pid=$!
	i=0
	while [ ! -s "$T/idle.out" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	if [ "$(cat "$T/idle.out" 2>/dev/null)" != "$NPROCS" ]; then
		notok "procs: unable to start $NPROCS idle processes ($(cat "$T/idle.out" 2>/dev/null))"
		return
	fi
	n1=$(nprocs)
	procs_phase many
	kill "$idle_pid" 2>/dev/null
	wait "$idle_pid" 2>/dev/null
	idle_pid=
	ok "procs: $n0 processes on the machine, then $n1 with $NPROCS idle ones; median of $PN rounds"
	for b in $builds; do
		[ "$b" = old ] && what="old build ($VS_BENCH_OLD)" || what="this build"
		eval "set -- \${res_${b}_none:-} x x x x"; rt0=$1 lc0=$2 cpu0=$3 sc0=$4
		eval "set -- \${res_${b}_many:-} x x x x"; rt1=$1 lc1=$2 cpu1=$3 sc1=$4
		[ "$rt0" != x ] && [ "$rt1" != x ] || continue
		# the local command, timed in the same rounds, is the control: how
		# much slower the machine itself got between the two phases
		norm=$(awk -v a="$rt1" -v b="$rt0" -v c="$lc1" -v d="$lc0" 'BEGIN { printf "%.2f", (b > 0 && c > 0 ? a * d / (b * c) : 0) }')
		target "procs-rtt-$b" "procs: $what: round trip $(ms "$rt1") with them, $(ms "$rt0") without: $(ratio "$rt1" "$rt0")x; the local command $(ratio "$lc1" "$lc0")x: ${norm}x for ours alone" \
			"$norm" '<=' 1.10
		if [ -n "$counting" ] && [ "$cpu0" != x ] && [ "$cpu1" != x ] && [ "$sc1" != x ]; then
			target "procs-cpu-$b" "procs: $what: agent CPU per session $(ms $((cpu1 / PN))) with them, $(ms $((cpu0 / PN))) without: $(ratio "$cpu1" "$cpu0")x" \
				"$(ratio "$cpu1" "$cpu0")" '<=' 1.10
			target "procs-syscalls-$b" "procs: $what: system calls per session $((sc1 / PN)) with them, $((sc0 / PN)) without: $(ratio "$sc1" "$sc0")x" \
				"$(ratio "$sc1" "$sc0")" '<=' 1.10
		fi
	done
}

# drain: wait (bounded, 120 s) until the agent has no session process
# left; DRAIN_MS is how long that took.  A session ends after its client
# has the exit status, so the clients being done does not mean the agent is.
# The listener always keeps one child, the spare waiting in accept() (its
# name is vsock-spare until it has a connection): that one does not count.
busy() {
	local c n
	for c in $(cat "/proc/$AGENT_PID/task/$AGENT_PID/children" 2>/dev/null); do
		n=$(cat "/proc/$c/comm" 2>/dev/null) || continue
		[ "$n" = vsock-spare ] || return 0
	done
	return 1
}
drain() {
	local t0=${EPOCHREALTIME/./} i=0
	while busy && [ $i -lt 12000 ]; do
		sleep 0.01
		i=$((i + 1))
	done
	DRAIN_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
}

# conc_run NAME MODE N: N sessions (tbench -s or -p) against a fresh agent;
# sets WALL FAILED DRAIN and, with perf, PER (CPU and system calls per session)
conc_run() {
	local r
	agent_start "$1" "$VS_BIN" $counting || { WALL= FAILED=$3 DRAIN= PER=; return; }
	read -r WALL FAILED <<<"$("$TBENCH" "$2" "$3" "$VSH" -n "unix:$T/$1.sock" -- true)"
	drain
	DRAIN=$DRAIN_MS
	agent_stop "$1"
	PER=
	[ -n "$AGENT_CPU_US" ] && [ -n "$AGENT_SYSCALLS" ] &&
		PER=", agent CPU $(ms $((AGENT_CPU_US / $3))) and $((AGENT_SYSCALLS / $3)) system calls per session"
}

# conc_one N: N sessions at once, against N in a row and N local commands
# at once; each against an agent of its own, until that agent is idle again
conc_one() {
	local n=$1 par seq loc fp fs fl dseq dpar pseq ppar
	conc_run conc-seq -s "$n"
	seq=$WALL fs=$FAILED dseq=$DRAIN pseq=$PER
	conc_run conc-par -p "$n"
	par=$WALL fp=$FAILED dpar=$DRAIN ppar=$PER
	read -r loc fl <<<"$("$TBENCH" -p "$n" "$SH" -c true)"
	if [ "${fp:-1}" -ne 0 ] || [ "${fs:-1}" -ne 0 ] || [ "${fl:-1}" -ne 0 ]; then
		notok "conc: $n sessions: ${fp:-?} of $n failed at once, ${fs:-?} in a row (local: ${fl:-?})"
		return
	fi
	ok "conc: $n sessions one after another  ${seq} ms, the agent idle $dseq ms later$pseq  (baseline)"
	ok "conc: $n sessions at once  ${par} ms, the agent idle $dpar ms later$ppar: $(ratio "$((par + dpar))" "$((seq + dseq))")x the sequential time, all succeeded"
	ok "conc: $n local '$SH -c true' at once  ${loc} ms  (ours at once: $(ratio "$((par + dpar))" "$loc")x that)"
}

bench_conc() {
	counting=
	perf_usable && counting=1
	conc_one "$CONC"
	[ "$CONC" -ne 200 ] && conc_one 200
}

# MB/s of BYTES in US microseconds
mbs() { awk -v b="$1" -v u="$2" 'BEGIN { printf "%.0f MB/s", (u > 0 ? b / u : 0) }'; }
# the median of the numbers given
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "") }'; }

bench_sess_throughput() {
	local a bytes r det nod f1 f2
	bytes=$((SESS_MB * 1048576))
	agent_start sess "$VS_BIN" || { notok "sess: unable to start the agent"; return; }
	a=unix:$T/sess.sock
	"$TBENCH" -r 2 "$VSH" -n "$a" -- true >/dev/null
	r=$("$TBENCH" -r "$SRUNS" "$VSH" -n "$a" -- "$TGEN $bytes" :: "$VSH" --no-detach -n "$a" -- "$TGEN $bytes")
	agent_stop sess
	{ read -r det _ f1; read -r nod _ f2; } <<<"$r"
	if [ -z "$nod" ] || [ $((f1 + f2)) -ne 0 ]; then
		notok "sess: $SESS_MB MiB sessions failed ($(echo "$r" | tr '\n' ' '))"
		return
	fi
	ok "sess: a --no-detach session, $SESS_MB MiB of output  $(ms "$nod")  $(mbs "$bytes" "$nod")  (baseline, median of $SRUNS)"
	target sess-throughput "sess: a detachable session (the default), the same  $(ms "$det")  $(mbs "$bytes" "$det"): $(ratio "$nod" "$det") of --no-detach's throughput" \
		"$(ratio "$nod" "$det")" '>=' 0.95
	# what each costs the agent's side (its session process, the shell,
	# tgen: the same work but for the session's): an agent for each,
	# counted, the sessions taking turns; on a busy machine CPU, not the
	# wall, is what a session takes from it
	perf_usable || { skip "sess: the agent's CPU time (perf stat unusable here)"; return; }
	agent_start sess-d "$VS_BIN" 1 || { notok "sess: unable to start the agent"; return; }
	local pd=$AGENT_PID wd=$AGENT_WAIT
	if ! agent_start sess-n "$VS_BIN" 1; then
		AGENT_PID=$pd AGENT_WAIT=$wd
		agent_stop sess-d
		notok "sess: unable to start the agent"
		return
	fi
	"$TBENCH" -r "$SRUNS" "$VSH" -n "unix:$T/sess-d.sock" -- "$TGEN $bytes" :: \
		"$VSH" --no-detach -n "unix:$T/sess-n.sock" -- "$TGEN $bytes" >/dev/null
	agent_stop sess-n
	nod=$AGENT_CPU_US
	AGENT_PID=$pd AGENT_WAIT=$wd
	agent_stop sess-d
	det=$AGENT_CPU_US
	[ -n "$det" ] && [ -n "$nod" ] &&
		ok "sess: CPU on the agent's side per session (with tgen's): detachable $(ms $((det / SRUNS))), --no-detach $(ms $((nod / SRUNS))): $(ratio "$det" "$nod")x"
}

bench_sess_resume() {
	local a bytes cut r fresh f i gaps="" g bad=0 n
	bytes=$((RES_MB * 1048576))
	# one cut, at five eighths: what the resumed connection then carries
	# (the rest, and what the agent kept) stays under the cut
	cut=$((bytes / 8 * 5))
	[ -x "$TCUT" ] || { notok "sess: no $TCUT (make host-bins)"; return; }
	agent_start resume "$VS_BIN" || { notok "sess: unable to start the agent"; return; }
	a=unix:$T/resume.sock
	rm -f "$T/cut.sock"
	"$TCUT" "unix:$T/cut.sock" "$a" "$cut" 2>"$T/cut.log" &
	cut_pid=$!
	if ! sock_wait "$T/cut.sock"; then
		notok "sess: unable to start the relay (tcut)"
		agent_stop resume
		return
	fi
	r=$("$TBENCH" -r "$((SRUNS * 4))" "$VSH" -n "unix:$T/cut.sock" -- true)
	read -r fresh _ f <<<"$r"
	i=0
	while [ $i -lt "$SRUNS" ]; do
		rm -f "$T/gap"
		"$VSH" -v -n "unix:$T/cut.sock" -- "$TGEN $bytes" 2>"$T/resume.err" |
			"$TBENCH" -w "$T/gap" $((cut - 1048576)) "$cut" | "$TGEN" -c "$bytes" >"$T/resume.chk" 2>&1
		n=$(grep -c 'resumed session' "$T/resume.err")
		read -r _ g _ <"$T/gap" 2>/dev/null
		if [ "$(cat "$T/resume.chk")" = "ok $bytes" ] && [ "$n" = 1 ] && [ -n "${g:-}" ]; then
			gaps="$gaps $g"
		else
			bad=$((bad + 1))
			[ $bad -eq 1 ] && notok "sess: a stream cut once and resumed: $(cat "$T/resume.chk"), $n resumes ($(tail -n 1 "$T/resume.err"))"
		fi
		i=$((i + 1))
	done
	kill "$cut_pid" 2>/dev/null
	wait "$cut_pid" 2>/dev/null
	cut_pid=
	agent_stop resume
	[ "$bad" -eq 0 ] || return
	if [ -z "$fresh" ] || [ "$f" -ne 0 ]; then
		notok "sess: fresh sessions through the relay failed ($r)"
		return
	fi
	# shellcheck disable=SC2086
	g=$(median $gaps)
	ok "sess: a fresh session through the relay (tcut), round trip of true  $(ms "$fresh")  (baseline, median of $((SRUNS * 4)))"
	# shellcheck disable=SC2086
	ok "sess: a $RES_MB MiB stream cut once at $((cut / 1048576)) MiB, resumed: the pause at the controller's stdout, cut to first resumed byte  $(ms "$g")  (median of $SRUNS: $(for x in $gaps; do ms "$x" | tr -d ' ms'; echo -n ' '; done | sed 's/ $//') ms), $(ratio "$g" "$fresh")x a fresh session; output byte-exact, one resume each"
}

bench_sess() {
	bench_sess_throughput
	bench_sess_resume
}

sections=${*:-exec procs conc sess}
for s in $sections; do
	case $s in
	exec) bench_exec ;;
	procs) bench_procs ;;
	conc) bench_conc ;;
	sess) bench_sess ;;
	*) notok "unknown section $s" ;;
	esac
done
finish
