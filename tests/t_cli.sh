# cli: the command lines, Unix listeners and the command's environment
# (sourced by suite.sh): an ssh user's habits must not lose data or
# surprise.  Nothing here opens AF_VSOCK on the dev machine: addresses are
# unix: ones, and where a word would become a vsock target the run must
# fail before connecting.

one_line() { [ "$(wc -l < "$1" | tr -d ' ')" = 1 ]; }
CL=$TMP/cli
rm -rf "$CL"; mkdir -p "$CL"

# --- Unix listeners replace only a stale socket ---
echo precious > "$CL/f"
# (timeout: a broken build may listen there for ever)
msg=$(timeout 5 "$AGENT" --listen "unix:$CL/f" 2>&1); rc=$?
case "$rc:$msg:$(cat "$CL/f")" in 1:*"$CL/f"*"not a socket; not replacing it"*:precious) t_ok "cli: the agent never replaces a file at its listening path";; *) t_fail "cli: agent over a file" "$rc $msg";; esac
msg=$(timeout 5 "$VSH" --listen "unix:$CL/f" -w 1 -- true 2>&1); rc=$?
case "$rc:$msg:$(cat "$CL/f")" in 255:*"not a socket; not replacing it"*:precious) t_ok "cli: the controller never replaces a file at its listening path";; *) t_fail "cli: controller over a file" "$rc $msg";; esac
msg=$(timeout 5 "$VSH" serve --vsock off --hub "$CL/f" 2>&1); rc=$?
case "$rc:$msg:$(cat "$CL/f")" in 255:*"not a socket; not replacing it"*:precious) t_ok "cli: the hub never replaces a file at its socket path";; *) t_fail "cli: hub over a file" "$rc $msg";; esac
# a live listener is not taken over: the second says so, the first serves on
"$VSH" --listen "unix:$CL/live.sock" -w 20 -- echo first-listener > "$CL/first.out" 2>"$CL/first.err" &
hp=$!
wait_for 5 test -S "$CL/live.sock"
msg=$(timeout 5 "$VSH" --listen "unix:$CL/live.sock" -w 1 -- echo second 2>&1); rc=$?
case "$rc:$msg" in 255:*"$CL/live.sock"*"address in use"*) t_ok "cli: a second listener on a live socket: 'address in use', naming the path";; *) t_fail "cli: second listener" "$rc $msg";; esac
timeout 10 "$AGENT" "unix:$CL/live.sock" 2>>"$TMP/agent.log"
wait "$hp"
expect_eq "cli: ...and the first listener still gets the agent" "$(cat "$CL/first.out")" first-listener
# a stale socket (its listener died without a word) is replaced
"$AGENT" --listen "unix:$CL/stale.sock" 2>>"$TMP/agent.log" &
sp=$!
wait_for 5 test -S "$CL/stale.sock"
kill -9 "$sp"; wait "$sp" 2>/dev/null
# At once: its spare (the pre-forked accept child) may still hold the
# socket for a moment, until its PDEATHSIG lands; the new listener's
# stale probe tries again (half of all restarts failed without).
check "cli: (a killed listener leaves its socket)" test -S "$CL/stale.sock"
"$AGENT" --listen "unix:$CL/stale.sock" 2>>"$TMP/agent.log" &
sp=$!
wait_for 5 sh -c "'$VSH' 'unix:$CL/stale.sock' -- true 2>/dev/null"
r=$("$VSH" "unix:$CL/stale.sock" -- echo replaced)
expect_eq "cli: a stale socket is replaced" "$r" replaced
kill -TERM "$sp"; wait "$sp" 2>/dev/null
check "cli: the agent removes its socket on SIGTERM" test ! -e "$CL/stale.sock"

# --- one option table: nothing silently dropped or taken for a target ---
msg=$(timeout 5 "$AGENT" --listen --allow any "unix:$CL/x.sock" 2>&1); rc=$?
case "$rc:$msg" in 2:*"given with --listen"*) t_ok "cli: agent: an address after --listen's options is an error, not ignored";; *) t_fail "cli: agent --listen --allow any unix:X" "$rc $msg";; esac
check "cli: ...and nothing listens at it" test ! -e "$CL/x.sock"
msg=$(timeout 8 "$VSH" --listen -w 5 "unix:$CL/y.sock" -- echo hi 2>&1); rc=$?
case "$rc:$msg" in 255:*"'unix:$CL/y.sock' looks like an address"*"--listen takes its address right after it"*) t_ok "cli: controller: an address after --listen's options is an error";; *) t_fail "cli: --listen -w 5 unix:X" "$rc $msg";; esac
check "cli: ...and nothing listens at it" test ! -e "$CL/y.sock"
msg=$("$VSH" -q 5 "unix:$CL/y.sock" -- true 2>&1); rc=$?
case "$rc:$msg" in 255:*"looks like an address, and there is already a TARGET"*) t_ok "cli: a stray number after an option that takes none is not a second target";; *) t_fail "cli: stray number" "$rc $msg";; esac
msg=$("$VSH" cp -q 5 "unix:$CL/y.sock" "$CL/f" :/tmp/z 2>&1); rc=$?
case "$rc:$msg" in 255:*"looks like an address"*) t_ok "cli: cp: a stray number is not a second target either";; *) t_fail "cli: cp stray number" "$rc $msg";; esac
# -p is the port everywhere: cp -p 1025 unix:S a :b reaches unix:S
agent_listen
echo cp-p > "$CL/cpp"
"$VSH" cp -p 1025 "$ADDR" "$CL/cpp" ":$CL/cpp2"; rc=$?
expect_eq "cli: cp -p is the port (cp -p 1025 unix:S a :b copies through unix:S)" "$rc $(cat "$CL/cpp2" 2>/dev/null)" "0 cp-p"
# ssh's habits: -l was our --listen, and '-l root @g1 -- id' ran 'root @g1
# -- id' on whatever agent dialed in: now an error that says why
msg=$("$VSH" -l root "$ADDR" -- id 2>&1); rc=$?
case "$rc:$msg" in 255:*"-l is gone"*"commands run as the agent's user"*"--listen"*) t_ok "cli: -l (ssh's login name) is an error that says commands run as the agent's user";; *) t_fail "cli: -l root" "$rc $msg";; esac
msg=$("$VSH" cp -lroot "$ADDR" "$CL/cpp" :/tmp/x 2>&1); rc=$?
case "$rc:$msg" in 255:*"-l is gone"*) t_ok "cli: ...-lNAME and in cp too";; *) t_fail "cli: cp -lroot" "$rc $msg";; esac
# -p means nothing to a guest the hub holds: said, not ignored
msg=$("$VSH" -p 2222 @nosuch -- true 2>&1); rc=$?
case "$rc:$msg" in 255:*"-p does not apply to @nosuch"*) t_ok "cli: -p with @NAME is an error, not silently ignored";; *) t_fail "cli: -p with @NAME" "$rc $msg";; esac
# a connection refused says -w waits for the agent, unless -w was given
"$AGENT" --listen "unix:$CL/dead.sock" 2>>"$TMP/agent.log" &
dp=$!
wait_for 5 test -S "$CL/dead.sock"
kill -9 "$dp"; wait "$dp" 2>/dev/null
refused() { ! "$VSH" "unix:$CL/dead.sock" -- true 2>/dev/null; }
wait_for 5 refused
msg=$("$VSH" "unix:$CL/dead.sock" -- true 2>&1); rc=$?
case "$rc:$msg" in 255:*"refused (is the agent listening there? -w SECS waits for it)"*) t_ok "cli: a refused connection hints at -w";; *) t_fail "cli: refused, no -w" "$rc $msg";; esac
msg=$("$VSH" -w 1 "unix:$CL/dead.sock" -- true 2>&1); rc=$?
case "$rc:$msg" in *"-w SECS"*) t_fail "cli: ...but not when -w was given" "$rc $msg";; 255:*"refused (is the agent listening there?)"*) t_ok "cli: ...but not when -w was given";; *) t_fail "cli: refused with -w 1" "$rc $msg";; esac
rm -f "$CL/dead.sock"
# cp checks its local sources before it asks for a session: a typo costs
# no connection (nothing listens here; the error is the file's)
msg=$("$VSH" cp "unix:$CL/nobody-here.sock" "$CL/no-such-file" :/tmp/x 2>&1); rc=$?
case "$rc:$msg" in *"unable to connect"*) t_fail "cli: cp: a missing local source is said before connecting" "$rc $msg";;
1:*"$CL/no-such-file: No such file or directory"*) t_ok "cli: cp: a missing local source is said before connecting (status 1)";; *) t_fail "cli: cp missing source" "$rc $msg";; esac
msg=$("$VSH" cp "unix:$CL/nobody-here.sock" "$CL" :/tmp/x 2>&1); rc=$?
case "$rc:$msg" in 1:*"$CL: Is a directory (use -r)"*) t_ok "cli: ...and a directory without -r";; *) t_fail "cli: cp dir without -r" "$rc $msg";; esac
msg=$("$VSH" "unix:$CL/nobody-here.sock" -u "$CL/no-such-file:/tmp/x" -- true 2>&1); rc=$?
case "$rc:$msg" in 1:*"$CL/no-such-file: No such file"*) t_ok "cli: ...and -u LOCAL:REMOTE";; *) t_fail "cli: -u missing source" "$rc $msg";; esac
# usage errors are one line: what is wrong, then try --help
for args in "--bogus" "-w" "-w x $ADDR" "cp $ADDR $CL/cpp" "cp --argv $ADDR a :b" "-E xyz $ADDR" "--legacy sideways $ADDR" "-M /x" \
	"-l root $ADDR" "--timeout 5 --legacy $ADDR" "--timeout x $ADDR" "-p 5 @web"; do
	# shellcheck disable=SC2086
	"$VSH" $args > /dev/null 2>"$CL/err"; rc=$?
	if [ "$rc" = 255 ] && one_line "$CL/err" && grep -q "(try vsock-shell .*--help)" "$CL/err"; then
		t_ok "cli: usage error in one line: vsock-shell $args"
	else
		t_fail "cli: usage error in one line: vsock-shell $args" "rc=$rc $(cat "$CL/err")"
	fi
done
"$AGENT" --bogus 2>"$CL/err"; rc=$?
if [ "$rc" = 2 ] && one_line "$CL/err" && grep -q "try --help" "$CL/err"; then t_ok "cli: agent usage error in one line"; else t_fail "cli: agent usage error" "rc=$rc $(cat "$CL/err")"; fi
"$VSH" --help > "$CL/help"; expect_eq "cli: --help goes to stdout, status 0" "$?$(grep -c '^usage: vsock-shell' "$CL/help")" 01

# -w is a limit, not a hint: it never overshoots by a backoff step. The
# bound allows for what the machine's load adds to a run that fails at
# once (measured just before: the VM stage runs beside other stages)
t0=$(date +%s.%N)
"$VSH" "unix:$CL/nobody-here.sock" -- true 2>/dev/null
t1=$(date +%s.%N)
"$VSH" -w 2 "unix:$CL/nobody-here.sock" -- true 2>/dev/null
t2=$(date +%s.%N)
base=$(echo "$t0 $t1" | awk '{ printf "%d", ($2 - $1) * 1000 }')
ms=$(echo "$t1 $t2" | awk '{ printf "%d", ($2 - $1) * 1000 }')
if [ "$ms" -ge 1900 ] && [ "$ms" -le $((2600 + 2 * base)) ]; then t_ok "cli: -w 2 gives up after 2 s (${ms} ms; a run that fails at once: ${base} ms)"
else t_fail "cli: -w 2" "${ms} ms (a run that fails at once: ${base} ms)"; fi
# -v says what it does
"$VSH" -v "$ADDR" -- true 2>"$CL/v"
case $(cat "$CL/v") in *"connecting to $ADDR"*"connected to $ADDR"*"agent: vsock-agent"*) t_ok "cli: -v tells the connection's steps";; *) t_fail "cli: -v" "$(cat "$CL/v")";; esac
agent_stop

# --- the command's environment is built as ssh and login build it ---
ENVP=/usr/bin/env
[ -x "$ENVP" ] || ENVP=/bin/env
new_addr
[ "$VS_TRANSPORT" = vsock ] && set -- --allow 1 || set --
FOO=leaked-from-the-agent HOME=/wrong SHELL=/bin/false USER=wrong PATH=/wrong:$PATH \
	"$AGENT" --listen "$LADDR" "$@" 2>>"$TMP/agent.log" &
APID=$!
PIDS="$PIDS $APID"
wait_for 5 addr_ready "$LADDR"
r=$("$VSH" "$CADDR" --argv -- "$ENVP")
me=$(id -un 2>/dev/null || echo root) home=$(awk -F: -v u="$(id -u)" '$3 == u { print $6; exit }' /etc/passwd)
case $r in *FOO=*|*HOME=/wrong*|*USER=wrong*) t_fail "cli: env: nothing of the agent's own environment" "$r";; *) t_ok "cli: env: nothing of the agent's own environment";; esac
expect_eq "cli: env: HOME, USER and LOGNAME from passwd" \
	"$(echo "$r" | grep -E '^(HOME|USER|LOGNAME)=' | sort | tr '\n' ' ')" "HOME=$home LOGNAME=$me USER=$me "
case $(echo "$r" | grep '^PATH=') in PATH=/wrong*) t_fail "cli: env: a default PATH" "$r";; PATH=*/bin*) t_ok "cli: env: a default PATH";; *) t_fail "cli: env: a default PATH" "$r";; esac
r=$("$VSH" "$CADDR" -e HOME=/from-e -e EXTRA=1 --argv -- "$ENVP" | grep -E '^(HOME|EXTRA)=' | sort | tr '\n' ' ')
expect_eq "cli: env: the request's -e variables win" "$r" "EXTRA=1 HOME=/from-e "
r=$(TERM=vt220 "$VSH" -t "$CADDR" --argv -- /bin/sh -c 'echo "$TERM"' </dev/null | tr -d '\r')
expect_eq "cli: env: TERM from the request, with a pty" "$r" vt220
# LANG and LC_* go along, as Debian's ssh sends them; empty ones do not,
# and -e overrides them
r=$(env -i PATH="$PATH" LANG=C.UTF-8 LC_TIME=POSIX LC_ALL= LCX=no "$VSH" "$CADDR" --argv -- "$ENVP" | grep -E '^(LANG|LC)' | sort | tr '\n' ' ')
expect_eq "cli: env: LANG and LC_* go along (set and not empty)" "$r" "LANG=C.UTF-8 LC_TIME=POSIX "
r=$(env -i PATH="$PATH" LANG=C.UTF-8 "$VSH" "$CADDR" -e LANG=POSIX -- 'echo "$LANG"')
expect_eq "cli: env: ...and -e LANG= overrides them" "$r" POSIX
kill "$APID"; wait "$APID" 2>/dev/null
if [ "$(id -u)" = 0 ] && [ "$VS_TRANSPORT" = unix ]; then
	pub=$(mktemp -d /tmp/vs-cli.XXXXXX); chmod 1777 "$pub"
	"$TGEN" -u 65534 "$PUB_AGENT" --listen "unix:$pub/a.sock" 2>>"$TMP/agent.log" &
	np=$!
	wait_for 5 test -S "$pub/a.sock"
	r=$("$VSH" "unix:$pub/a.sock" --argv -- "$ENVP" | grep -E '^(HOME|SHELL|USER|LOGNAME)=' | sort | tr '\n' ' ')
	nb=$(awk -F: '$3 == 65534 { print "HOME=" $6 " LOGNAME=" $1 " SHELL=" $7 " USER=" $1 " "; exit }' /etc/passwd)
	expect_eq "cli: env: an agent running as nobody gives nobody's HOME, SHELL, USER" "$r" "$nb"
	# nobody's shell is nologin, which says only "not available": the
	# agent says why, and the ways around it
	case $nb in
	*"SHELL=/usr/sbin/nologin "* | *"SHELL=/sbin/nologin "*)
		msg=$("$VSH" "unix:$pub/a.sock" -- id 2>&1); rc=$?
		case "$rc:$msg" in *"the agent's user has the shell "*"/nologin, which runs no command: -e SHELL=/bin/sh or --argv"*)
			t_ok "cli: a nologin shell: the agent says why the command did not run (status $rc)";; *) t_fail "cli: nologin hint" "$rc $msg";; esac
		r=$("$VSH" -e SHELL=/bin/sh "unix:$pub/a.sock" -- 'echo "via $SHELL"')
		expect_eq "cli: ...and -e SHELL=/bin/sh gets around it" "$r" "via /bin/sh" ;;
	*) t_skip "cli: a nologin shell" "nobody's shell here: $nb" ;;
	esac
	kill "$np"; wait "$np" 2>/dev/null
	rm -rf "$pub"
fi
