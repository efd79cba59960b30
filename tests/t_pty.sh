# pty: the interactive side, driven through tpty (sourced by suite.sh).
# tpty runs vsock-shell on a pty of its own: that pty is "the host
# terminal", whose settings must come back unchanged on every exit path.
#
# Most sessions ask for SHELL=/bin/sh: a plain shell starts in
# milliseconds, where a distribution's bash login can take seconds.  One
# test keeps the agent's default login shell.  Patterns are written so
# that the echo of the typed line cannot match them (echo A""B prints AB).

PTY_SH=SHELL=/bin/sh

# pty_t NAME TPTY-ARGS... <<SCRIPT: one test, one tpty run.
pty_t() {
	p_name=$1; shift
	if TERM=${PTY_TERM:-xterm} "$TPTY" -T 20 -t 5 "$@" 2>"$TMP/tpty.err"; then
		t_ok "$p_name"
	else
		t_fail "$p_name" "$(tr '\n' ' ' < "$TMP/tpty.err" | cut -c1-600)"
	fi
}
gone() { ! kill -0 "$1" 2>/dev/null; }

if [ ! -x "$TPTY" ]; then
	t_skip "pty: tests" "no $TPTY"
else

agent_listen
P=$ADDR

# The default login shell, at the size of the host terminal.
pty_t "pty: login shell starts at the terminal's size (24 80)" -t 10 -r 24 -c 80 - -- "$VSH" "$P" <<'EOF'
line stty size; echo A""B
expect 24 80
expect AB
line exit
wait 0
EOF

pty_t "pty: resize 40x132 reaches the remote pty (SIGWINCH, WINSIZE)" -r 24 -c 80 - -- "$VSH" -e "$PTY_SH" "$P" <<'EOF'
line stty size; echo A""B
expect 24 80
expect AB
resize 40 132
sleep 50
line stty size; echo C""D
expect 40 132
expect CD
resize 30 100
sleep 50
line stty size
expect 30 100
line exit
wait 0
EOF

pty_t "pty: tty is /dev/pts/N and stdin is a terminal" - -- "$VSH" -e "$PTY_SH" "$P" <<'EOF'
line tty; [ -t 0 ] && [ -t 1 ] && echo y""es
expect-re /dev/pts/[0-9]+
expect yes
line exit
wait 0
EOF

pty_t "pty: Ctrl-C interrupts sleep 100, the shell survives" - -- "$VSH" -e "$PTY_SH" "$P" <<'EOF'
line echo st""arted; sleep 100
expect started
sleep 300
send \003
line echo "rc=$?"; echo al""ive
timeout 3
expect rc=130
expect alive
line exit
wait 0
EOF

pty_t "pty: exit 7 is the controller's exit status" - -- "$VSH" -e "$PTY_SH" "$P" <<'EOF'
line echo A""B
expect AB
line exit 7
wait 7
EOF

# 10 MB of 'Z' (no newline) through the remote pty, counted here: the
# tally starts after the echo of the command line and stops at END.
pty_t "pty: 10 MB of output through the pty, byte count exact" -c 200 - -- "$VSH" -e "$PTY_SH" "$P" <<'EOF'
line head -c 10000000 /dev/zero | tr '\\000' '\\132'; echo; echo EN""D
expect EN""D
tally Z
timeout 20
expect END
tally-is 10000000
line exit
wait 0
EOF

pty_t "pty: host terminal raw during the session, restored after exit" - -- "$VSH" -e "$PTY_SH" "$P" <<'EOF'
termios-save
line echo A""B
expect AB
termios-changed
line exit
wait 0
termios-check
EOF

pty_t "pty: host terminal restored after SIGTERM to the controller" - -- "$VSH" -e "$PTY_SH" "$P" <<'EOF'
termios-save
line echo A""B; sleep 100
expect AB
termios-changed
signal TERM
timeout 3
wait any
termios-check
EOF

pty_t "pty: host terminal restored after ~. (escape)" - -- "$VSH" -t "$P" -- sleep 100 <<'EOF'
termios-save
sleep 200
termios-changed
send \r~.
timeout 3
wait 255
termios-check
EOF

# The escape must work when the remote side never answers.
pty_t "pty: ~. ends a silent session promptly with 255" - -- "$VSH" -t "$P" -- sleep 100 <<'EOF'
sleep 200
send \r~.
timeout 2
expect closed
wait 255
EOF

pty_t "pty: ~? lists the escapes, ~~ sends one ~, session goes on" - -- "$VSH" -t "$P" -- cat <<'EOF'
line hello
expect hello
expect hello
send \r~?
expect ~.
line again
expect again
expect again
send ~~x\r
expect-re \n~x\r
send \r~.
timeout 3
wait 255
EOF

pty_t "pty: -E ^] names its own escape in the help and the close message" - -- "$VSH" -E '^]' -t "$P" -- cat <<'EOF'
send \r\x1d?
expect ^].  - terminate
send \r~.
send \r\x1d.
expect escape (^].)
timeout 3
wait 255
EOF

# busybox ash asks for the cursor position after every prompt; the
# terminal's answer (ESC [ row ; col R) arrives as input, and is not
# typing: ~. right after it still ends the session.  So for the other
# reports (device attributes, an OSC colour string ended by BEL or ST).
pty_t "pty: ~. after the terminal's cursor position report (an ash prompt's query)" - -- "$VSH" -t "$P" -- cat <<'EOF'
sleep 200
send \r\e[24;1R~.
timeout 3
expect closed
wait 255
EOF
pty_t "pty: ~. after device attributes and OSC colour replies" - -- "$VSH" -t "$P" -- cat <<'EOF'
sleep 200
send \r\e[?62;22c\e]11;rgb:0000/0000/0000\007\e]10;rgb:ffff/ffff/ffff\e\\~.
timeout 3
expect closed
wait 255
EOF
# ...but a key that sends a sequence (cursor left) is typing, as in ssh:
# a ~. after it goes to the remote side
pty_t "pty: a cursor key is typing: ~. after it is sent on" - -- "$VSH" -t "$P" -- cat <<'EOF'
sleep 200
send \r\e[D~.
line still
expect still
expect still
send \r~.
timeout 3
expect closed
wait 255
EOF

# ~^Z suspends the controller as Ctrl-Z stops a local job: the shell it
# runs under gets the terminal back, cooked; fg continues the session,
# raw again.  (An interactive sh with job control, on tpty's terminal.)
pty_t "pty: ~^Z suspends vsock-shell (terminal cooked), fg resumes the session" - -- env PS1='PS> ' sh -i <<EOF
expect PS>
line $VSH -t $P -- cat
sleep 500
line hello
expect hello
expect hello
send \\r~\\032
expect [suspend vsock-shell]
expect PS>
line stty -a | grep -q ' icanon' && echo coo""ked
expect cooked
expect PS>
line fg
sleep 300
line again
expect again
expect again
send \\r~.
expect closed
expect PS>
line exit 0
wait 0
EOF

# --timeout on a pty: the session dies, the terminal comes back as it was
pty_t "pty: --timeout on a pty: status 124, terminal restored" - -- "$VSH" -t --timeout 2 "$P" -- 'echo st""arted; exec sleep 100' <<'EOF'
termios-save
expect started
termios-changed
timeout 6
expect --timeout
wait 124
termios-check
EOF

# Skip only when the agent's side says it has no vi, never because the
# probe itself failed.
if [ "$("$VSH" -e "$PTY_SH" "$P" -- 'command -v vi >/dev/null || echo none' 2>&1)" != none ]; then
	rm -f "$TMP/vifile"
	pty_t "pty: vi draws the screen and quits with :q!" -r 24 -c 80 - -- "$VSH" -e "$PTY_SH" "$P" <<EOF
line PS1='P''S> '; echo A""B
expect AB
expect PS>
line vi $TMP/vi''file
timeout 8
expect-re (~.*vifile|vifile.*~)
sleep 200
send :q!\\r
expect PS>
line echo vi""done
expect vidone
line exit
wait 0
EOF
else
	t_skip "pty: vi draws the screen and quits with :q!" "no vi on the agent's side"
fi

pty_t "pty: -t runs a command on a pty" - -- "$VSH" -t "$P" -- 'tty; stty size' <<'EOF'
expect-re /dev/pts/[0-9]+
expect 24 80
wait 0
EOF

# Without a command and on a terminal a pty is the default: -T refuses it.
# The local terminal stays cooked, so it turns Enter into a newline.
pty_t "pty: -T gives no pty even to a shell on a terminal" - -- "$VSH" -T -e "$PTY_SH" "$P" <<'EOF'
line tty
expect not a tty
line exit 3
wait 3
EOF

pty_t "pty: a command on a terminal gets no pty without -t" - -- "$VSH" "$P" -- 'tty' <<'EOF'
expect not a tty
wait 1
EOF

r=$(echo tty | "$VSH" -e "$PTY_SH" "$P" 2>&1)
expect_eq "pty: stdin not a terminal gives no pty" "$r" "not a tty"

PTY_TERM=vt220
pty_t "pty: -e FOO=bar and TERM reach the pty shell" - -- "$VSH" -e "$PTY_SH" -e FOO=bar "$P" <<'EOF'
line echo "<$FOO:$TERM>"
expect <bar:vt220>
line exit
wait 0
EOF
unset PTY_TERM

# The host vanishes (SIGKILL: no goodbye) under --no-detach: the remote
# session must die, even a command that ignores the hangup of its
# terminal.  (Without it the session outlives its connection: t_sess.)
rm -f "$TMP/pty.pid"
pty_t "pty: controller killed with -9: the session's command ran" - -- "$VSH" --no-detach -e "$PTY_SH" "$P" <<EOF
line sh -c 'trap "" HUP; echo \$\$ > $TMP/pty.pid; echo st""arted; exec sleep 100'
expect started
sleep 100
signal KILL
wait signal KILL
EOF
rpid=$(cat "$TMP/pty.pid" 2>/dev/null)
if [ -z "$rpid" ]; then
	t_fail "pty: controller killed with -9: the remote command dies" "no pid file"
elif wait_for 5 gone "$rpid"; then
	t_ok "pty: controller killed with -9: the remote command dies"
else
	t_fail "pty: controller killed with -9: the remote command dies" "pid $rpid still alive after 5 s"
	kill -9 "$rpid" 2>/dev/null
fi

# A pty session that ends is a terminal hangup: SIGHUP to its processes.
# A background job dies of it; nohup (where there is one), trap '' HUP and
# setsid live on.
rm -f "$TMP"/pbg.*
PBGN=: PBG=
command -v nohup >/dev/null && PBGN=nohup PBG="alive "
pty_t "pty: a shell that leaves jobs behind exits" - -- "$VSH" -e "$PTY_SH" "$P" <<EOF
line sleep 100 >/dev/null 2>&1 & echo \$! > $TMP/pbg.plain
line $PBGN sleep 100 >/dev/null 2>&1 & echo \$! > $TMP/pbg.nohup
line (trap '' HUP; exec sleep 100) >/dev/null 2>&1 & echo \$! > $TMP/pbg.trap
line setsid sh -c 'echo \$\$ > $TMP/pbg.setsid; exec sleep 100' >/dev/null 2>&1 &
line sleep 0.3; echo do""ne
expect done
line exit
wait 0
EOF
pbg() { p=$(cat "$TMP/pbg.$1" 2>/dev/null); [ -n "$p" ] || { echo none; return; }; if wait_for "$2" gone "$p"; then echo gone; else echo alive; fi; }
expect_eq "pty: at the session's end a background job gets SIGHUP; ${PBG:+nohup, }trap HUP, setsid live on" \
	"$(pbg plain 5) ${PBG:+$(pbg nohup 1) }$(pbg trap 1) $(pbg setsid 1)" "gone ${PBG}alive alive"
for f in plain nohup trap setsid; do p=$(cat "$TMP/pbg.$f" 2>/dev/null); [ -n "$p" ] && kill "$p" 2>/dev/null; done
# ~. ends a session on purpose: everything of it dies, a job that ignores
# SIGHUP too
rm -f "$TMP/pbg.trap"
pty_t "pty: ~. with a job that ignores SIGHUP running" - -- "$VSH" -e "$PTY_SH" "$P" <<EOF
line (trap '' HUP; exec sleep 100) >/dev/null 2>&1 & echo \$! > $TMP/pbg.trap
line sleep 0.3; echo do""ne
expect done
send \r~.
timeout 3
wait 255
EOF
expect_eq "pty: ~. ends the session on purpose: a job that ignores SIGHUP dies too" "$(pbg trap 5)" gone

# An early initramfs may have no devpts: the agent mounts an instance
# itself (in the test VM only: it unmounts /dev/pts for a moment)
if [ -e /etc/vsock-test-guest ] && grep -q ' /dev/pts devpts ' /proc/mounts && umount /dev/pts 2>/dev/null; then
	r=$("$VSH" -t "$P" -- tty </dev/null 2>&1 | tr -d '\r')
	case $r in /dev/pts/*) t_ok "pty: the agent mounts devpts when it is missing ($r)";; *) t_fail "pty: the agent mounts devpts when it is missing" "$r";; esac
	grep -q ' /dev/pts devpts ' /proc/mounts || mount -t devpts devpts /dev/pts
fi

agent_stop
fi
