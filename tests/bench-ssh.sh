#!/usr/bin/env bash
# bench-ssh.sh - the peer users compare us with, OpenSSH, on this machine,
# side by side with vsock-shell in the same run (make bench runs it):
#
#   VS_BIN=DIR VS_TMP=DIR bash tests/bench-ssh.sh
#
# sshd runs per connection, as inetd would start it: `socat
# UNIX-LISTEN:...,fork EXEC:"sshd -i -f CONFIG"` on a Unix socket, and ssh
# reaches it through `ProxyCommand socat - UNIX-CONNECT:...`: no TCP, no
# network.  Everything lives in a scratch directory: host and user keys,
# sshd_config, ssh_config, known_hosts, a clean home (HOME there, on both
# sides: the remote shell reads no ~/.bashrc of the machine's).  The
# machine's own sshd, /etc/ssh and ~/.ssh are never read or written: ssh
# is given -F, sshd -f.  As root, sshd insists on its privilege separation
# directory /run/sshd, and records pty logins in utmp, wtmp and lastlog:
# it runs in a mount namespace of its own, with tmpfs over /run and
# /var/log that only it sees, so nothing on the machine changes.
# What is started is stopped by pid.
#
# Measured, each against vsock-shell doing the same, as a ratio (the
# peer's figure over ours: above 1 means we are faster or smaller):
#   exec round trip of `true` through a ControlMaster, and cold (a new
#   connection each time); 200 concurrent `true` through the master;
#   keystroke echo on a pty (a remote `cat`, each key sent once the last
#   one came back); 1 GiB by scp and by `ssh cat > file` against our
#   upload (tmpfs); one TCP stream through ssh -L against vsock-shell -L
#   (VS_BENCH_FWD_MB, 256 MiB, to the same sink);
#   the memory of a waiting sshd against the listening agent's, and of
#   one idle session (sshd's processes against the agent's).
#
# Env: VS_BENCH_N (mux rounds, default 500; cold rounds a tenth; keys 200),
#      VS_BENCH_SSH_CONC (200), VS_BENCH_MB (1024), VS_BENCH_RUNS (3)
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"

N=${VS_BENCH_N:-500}
NCOLD=$(((N + 9) / 10))
CONC=${VS_BENCH_SSH_CONC:-200}
MB=${VS_BENCH_MB:-1024}
RUNS=${VS_BENCH_RUNS:-3}
raise_limits
export TBENCH_LIMIT=${TBENCH_LIMIT:-240}
# a pause after each timed run: what a session leaves running on the server
# side once the client has its status is not charged to the next run
export TBENCH_GAP_MS=${TBENCH_GAP_MS:-5}

SSHD=
for p in /usr/sbin/sshd /usr/bin/sshd; do [ -x "$p" ] && SSHD=$p && break; done
need=
[ -n "$SSHD" ] || need="$need openssh-server"
command -v ssh >/dev/null && command -v scp >/dev/null && command -v ssh-keygen >/dev/null ||
	need="$need openssh-client"
command -v socat >/dev/null || need="$need socat"
if [ -n "$need" ]; then
	skip "ssh peers (${need# } not installed)"
	finish
	exit
fi

S=$(mktemp -d /tmp/vsbench-ssh.XXXXXX) || exit 1
D=$S
if [ -d /dev/shm ] && [ -w /dev/shm ]; then D=$(mktemp -d /dev/shm/vsbench-ssh.XXXXXX) || exit 1; fi
socat_pid= master_pid= hold_pid=
cleanup() {
	local p i=0
	[ -n "$master_pid" ] && $SSH -O exit bench >/dev/null 2>&1
	for p in $hold_pid $master_pid; do kill "$p" 2>/dev/null; done
	[ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null
	if [ -n "$socat_pid" ]; then
		# each connection's sshd ends when its client has gone, and the
		# per-connection socat reaps it: wait for that (bounded), so that
		# nothing is left to be reparented; then the listener
		while [ -n "$(conns)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		for p in $(conns); do kill "$p" 2>/dev/null; done
		kill "$socat_pid" 2>/dev/null
	fi
	wait 2>/dev/null
	rm -rf "$S" "$D"
}
# conns: the per-connection socat processes under the listener
conns() { cat "/proc/$socat_pid/task/$socat_pid/children" 2>/dev/null; }
trap cleanup EXIT

mkdir -p "$S/home"
ssh-keygen -q -t ed25519 -N '' -C vsbench-host -f "$S/host_key" </dev/null &&
	ssh-keygen -q -t ed25519 -N '' -C vsbench-user -f "$S/id" </dev/null ||
	{ notok "ssh: unable to generate keys"; finish; exit; }
cp "$S/id.pub" "$S/authorized_keys"
user=$(id -un)
sftp=
for p in /usr/lib/openssh/sftp-server /usr/libexec/sftp-server /usr/lib/ssh/sftp-server; do
	[ -x "$p" ] && sftp=$p && break
done
# StrictModes off: the scratch directory lives under /tmp (mode 1777),
# which sshd's path check refuses; MaxSessions up: 200 sessions at once
# through one master.
cat >"$S/sshd_config" <<EOF
HostKey $S/host_key
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
MaxSessions 1024
LogLevel ERROR
SetEnv HOME=$S/home
${sftp:+Subsystem sftp $sftp}
EOF
cat >"$S/ssh_config" <<EOF
Host bench
  HostName bench
  User $user
  IdentityFile $S/id
  IdentitiesOnly yes
  ProxyCommand socat - UNIX-CONNECT:$S/sshd.sock
  StrictHostKeyChecking no
  UserKnownHostsFile $S/known_hosts
  GlobalKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
  ControlPath $S/ctl
  ControlMaster no
EOF
export HOME=$S/home
SSH="ssh -F $S/ssh_config"

listen="UNIX-LISTEN:$S/sshd.sock,fork EXEC:'$SSHD -i -e -f $S/sshd_config'"
if [ "$(id -u)" -eq 0 ]; then
	unshare -m --propagation private sh -c \
		"mount -t tmpfs -o mode=755 vsbench /run && mkdir -m 755 /run/sshd &&
		 mount -t tmpfs -o mode=755 vsbench /var/log && exec socat $listen" \
		2>>"$S/sshd.log" &
else
	sh -c "exec socat $listen" 2>>"$S/sshd.log" &
fi
socat_pid=$!
if ! sock_wait "$S/sshd.sock" || ! $SSH bench true </dev/null 2>>"$S/ssh.log"; then
	notok "ssh: unable to reach sshd -i through socat: $(tail -n 3 "$S/sshd.log" "$S/ssh.log" | tr '\n' ' ')"
	finish
	exit
fi

agent_start ssh "$VS_BIN" || { notok "ssh: unable to start the agent"; finish; exit; }
A=unix:$T/ssh.sock

# the memory of what one connection runs (sshd and its children), in kB
conn_kb() {
	local c kb=0 self
	for c in $(conns); do
		self=$("$TGEN" -r "$c")
		kb=$((kb + $("$TBENCH" -m "$c") - ${self:-0}))
	done
	echo $kb
}

# -- memory: a waiting sshd against the listening agent --------------------
socat -u "UNIX-CONNECT:$S/sshd.sock" "EXEC:sleep 30" 2>/dev/null &
hold_pid=$!
i=0
while [ -z "$(conns)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
sshd_idle=$(conn_kb)
kill "$hold_pid" 2>/dev/null
wait "$hold_pid" 2>/dev/null
hold_pid=
agent_idle=$("$TGEN" -r "$AGENT_PID")
if [ "${sshd_idle:-0}" -gt 0 ] && [ "${agent_idle:-0}" -gt 0 ]; then
	ok "ssh: memory: listening agent ${agent_idle} kB RSS; sshd waiting for a client ${sshd_idle} kB ($(ratio "$sshd_idle" "$agent_idle")x ours)"
else
	notok "ssh: memory: unable to read RSS (sshd '$sshd_idle', agent '$agent_idle')"
fi

# -- exec round trip: cold ---------------------------------------------------
r=$(TBENCH_GAP_MS=50 "$TBENCH" -r "$NCOLD" "$VSH" -n "$A" -- true :: $SSH -o ControlPath=none bench true)
{ read -r ours _ f1; read -r cold _ f2; } <<<"$r"
if [ "$((f1 + f2))" -eq 0 ]; then
	ok "ssh: round trip, a new connection each: ssh $(ms "$cold"), vsock-shell $(ms "$ours") ($(ratio "$cold" "$ours")x ours, median of $NCOLD)"
else
	notok "ssh: cold round trips failed ($r)"
fi

# -- through a ControlMaster -------------------------------------------------
rm -f "$S/ctl"
$SSH -o ControlMaster=yes -o ControlPersist=no -N bench </dev/null 2>>"$S/ssh.log" &
master_pid=$!
i=0
while ! $SSH -O check bench >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if ! $SSH -O check bench >/dev/null 2>&1; then
	notok "ssh: unable to start a ControlMaster: $(tail -n 2 "$S/ssh.log" | tr '\n' ' ')"
else
	r=$("$TBENCH" -r "$N" "$VSH" -n "$A" -- true :: $SSH bench true)
	{ read -r ours _ f1; read -r mux _ f2; } <<<"$r"
	if [ "$((f1 + f2))" -eq 0 ]; then
		ok "ssh: round trip through a ControlMaster: ssh $(ms "$mux"), vsock-shell $(ms "$ours") ($(ratio "$mux" "$ours")x ours, median of $N)"
	else
		notok "ssh: round trips through the master failed ($r)"
	fi

	# keystroke echo on a pty, both through an established connection
	keyn=$(((N + 1) / 2))
	read -r kl _ kf0 <<<"$("$TBENCH" -k "$keyn" sh -c 'echo READY; exec cat')"
	read -r ko _ kf1 <<<"$("$TBENCH" -k "$keyn" "$VSH" -t "$A" -- 'echo READY; exec cat')"
	read -r ks _ kf2 <<<"$("$TBENCH" -k "$keyn" $SSH -tt bench 'echo READY; exec cat')"
	if [ "${kf0:-1}" -eq 0 ] && [ "${kf1:-1}" -eq 0 ] && [ "${kf2:-1}" -eq 0 ]; then
		ok "ssh: keystroke echo on a pty: ssh $((ks)) us, vsock-shell $((ko)) us ($(ratio "$ks" "$ko")x ours; a local pty: $kl us; median of $keyn)"
	else
		notok "ssh: keystroke echo failed (local ${kf0:-?}, ours ${kf1:-?}, ssh ${kf2:-?} keys lost)"
	fi

	# memory of one idle session: sshd's (its connection's processes,
	# the command among them) against the agent's session process and
	# the same command
	$SSH bench 'sleep 5' </dev/null &
	s1=$!
	"$VSH" -n "$A" -- 'sleep 5' &
	s2=$!
	sleep 1
	sshd_sess=$(conn_kb)
	a_self=$("$TGEN" -r "$AGENT_PID")
	ours_sess=$(($("$TBENCH" -m "$AGENT_PID") - ${a_self:-0}))
	kill "$s1" "$s2" 2>/dev/null
	wait "$s1" "$s2" 2>/dev/null
	if [ "${sshd_sess:-0}" -gt 0 ] && [ "${ours_sess:-0}" -gt 0 ]; then
		ok "ssh: memory of a connection running 'sleep': sshd ${sshd_sess} kB, the agent's session ${ours_sess} kB ($(ratio "$sshd_sess" "$ours_sess")x ours)"
	else
		notok "ssh: memory of a session: unable to read RSS (sshd '$sshd_sess', ours '$ours_sess')"
	fi

	read -r sp sf <<<"$("$TBENCH" -p "$CONC" $SSH bench true)"
	read -r op of <<<"$("$TBENCH" -p "$CONC" "$VSH" -n "$A" -- true)"
	if [ "${sf:-1}" -eq 0 ] && [ "${of:-1}" -eq 0 ]; then
		ok "ssh: $CONC at once through the master: ssh ${sp} ms, vsock-shell ${op} ms ($(ratio "$sp" "$op")x ours)"
	else
		notok "ssh: $CONC at once: ${sf:-?} ssh and ${of:-?} vsock-shell sessions failed"
	fi

	# -- 1 GiB: scp and ssh cat against our upload, on tmpfs ------------
	bytes=$((MB * 1048576))
	"$TGEN" "$bytes" 7 >"$D/src"
	best_ours= best_scp= best_cat= xfail=
	now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
	best() { [ -z "$1" ] || [ "$2" -lt "$1" ] && echo "$2" || echo "$1"; }
	for ((run = 0; run < RUNS; run++)); do
		rm -f "$D/dst"; t0=$(now_ms)
		"$VSH" cp -q "$A" "$D/src" ":$D/dst" </dev/null || xfail="$xfail ours"
		best_ours=$(best "$best_ours" $(($(now_ms) - t0)))
		[ "$run" -eq 0 ] && { cmp -s "$D/src" "$D/dst" || xfail="$xfail ours-content"; }
		if [ -n "$sftp" ]; then
			rm -f "$D/dst"; t0=$(now_ms)
			scp -q -F "$S/ssh_config" "$D/src" "bench:$D/dst" </dev/null || xfail="$xfail scp"
			best_scp=$(best "$best_scp" $(($(now_ms) - t0)))
		fi
		rm -f "$D/dst"; t0=$(now_ms)
		$SSH bench "cat > $D/dst" <"$D/src" || xfail="$xfail ssh-cat"
		best_cat=$(best "$best_cat" $(($(now_ms) - t0)))
		[ "$run" -eq 0 ] && { cmp -s "$D/src" "$D/dst" || xfail="$xfail ssh-cat-content"; }
	done
	rm -f "$D/src" "$D/dst"
	if [ -n "$xfail" ]; then
		notok "ssh: transfers failed:$xfail"
	else
		rate() { echo $((bytes / 1000 / ($1 > 0 ? $1 : 1))); }
		ok "ssh: upload $MB MiB to tmpfs, best of $RUNS: vsock-shell cp ${best_ours} ms, $(rate "$best_ours") MB/s (baseline)"
		[ -n "$sftp" ] && ok "ssh: scp ${best_scp} ms, $(rate "$best_scp") MB/s ($(ratio "$best_scp" "$best_ours")x our time)"
		ok "ssh: ssh cat > file ${best_cat} ms, $(rate "$best_cat") MB/s ($(ratio "$best_cat" "$best_ours")x our time)"
	fi
	# ssh -O exit: the master ends its ProxyCommand itself
	$SSH -O exit bench >/dev/null 2>&1 || kill "$master_pid" 2>/dev/null
	wait "$master_pid" 2>/dev/null
	master_pid=
fi
# -- forwarding: one stream through ssh -L and through vsock-shell -L ------
# the same sink on the loopback, VS_BENCH_FWD_MB (256) MiB each, best of 2
if [ -x "$VS_BIN/tfwd" ]; then
	fmb=${VS_BENCH_FWD_MB:-256} fp=$((30000 + $$ % 5000))
	fbytes=$((fmb * 1048576))
	"$VS_BIN/tfwd" serve "tcp:127.0.0.1:$fp" 'cat > /dev/null' 2>/dev/null & fsink=$!
	$SSH -N -L "$((fp + 1)):127.0.0.1:$fp" bench </dev/null 2>>"$S/ssh.log" & fssh=$!
	"$VSH" -N -L "$((fp + 2)):127.0.0.1:$fp" "$A" 2>>"$T/agent.log" & fvsh=$!
	sleep 2
	fwd_best() {
		local i b= t
		for i in 1 2; do
			t=$("$TGEN" -t "$VS_BIN/tfwd" send "tcp:127.0.0.1:$1" "$fbytes" 2>&1 >/dev/null | tail -n 1)
			case $t in *[!0-9]* | "") echo fail; return ;; esac
			[ -z "$b" ] || [ "$t" -lt "$b" ] && b=$t
		done
		echo "$b"
	}
	f_ssh=$(fwd_best $((fp + 1))) f_ours=$(fwd_best $((fp + 2)))
	kill "$fssh" "$fvsh" "$fsink" 2>/dev/null
	wait "$fssh" "$fvsh" "$fsink" 2>/dev/null
	if [ "$f_ssh" = fail ] || [ "$f_ours" = fail ]; then
		notok "ssh: -L, $fmb MiB: a stream failed (ssh $f_ssh, ours $f_ours)"
	else
		frate() { awk -v b="$fbytes" -v t="$1" 'BEGIN { printf "%.0f", (t > 0 ? b / 1e6 / (t / 1000) : 0) }'; }
		ok "ssh: -L, one stream of $fmb MiB: vsock-shell -L $(frate "$f_ours") MB/s (baseline), ssh -L $(frate "$f_ssh") MB/s ($(ratio "$f_ssh" "$f_ours")x our time)"
	fi
fi

agent_stop ssh
finish
