# legacy: vsock_guest_exec's disposable and persistent protocols (sourced
# by suite.sh).  The agent runs legacy commands with its own stdout, so the
# commands leave files behind for us to look at.

# A one-letter command that records each run: "x" on the agent's PATH.
mkdir -p "$TMP/lbin"
printf '#!/bin/sh\necho ran >> %s/xran\n' "$TMP" > "$TMP/lbin/x"
chmod +x "$TMP/lbin/x"
OPATH=$PATH
PATH=$TMP/lbin:$PATH
export PATH

# hex helpers: LE u16 of a number, and text to hex
le16() { printf '%02x%02x' $(($1 & 255)) $(($1 >> 8)); }
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
# a command of exactly N bytes that writes "ok" into FILE
sized_cmd() {
	c="echo ok > $2 #"
	pad=$(($1 - ${#c}))
	printf '%s' "$c"
	printf '%*s' "$pad" '' | tr ' ' z
}

# --- disposable, listen mode (one command per connection) ---
agent_listen
X=$ADDR
rm -f "$TMP/d1"
"$VSH" --legacy "$X" -- "echo disposable > $TMP/d1"
expect_eq "legacy: disposable command runs" "$(cat "$TMP/d1" 2>/dev/null)" disposable

rm -f "$TMP/xran"
"$TPEER" "$X" sendtext:x shut eof:5000
expect_eq "legacy: disposable length 1 runs" "$(cat "$TMP/xran" 2>/dev/null)" ran

"$TPEER" "$X" shut eof:5000
check "legacy: disposable length 0 closes cleanly" kill -0 "$APID"

rm -f "$TMP/d2048"
sized_cmd 2048 "$TMP/d2048" > "$TMP/c2048"
"$TPEER" "$X" "sendtext:$(cat "$TMP/c2048")" shut eof:5000
expect_eq "legacy: disposable length 2048 accepted" "$(cat "$TMP/d2048" 2>/dev/null)" ok

rm -f "$TMP/d2049"
sized_cmd 2049 "$TMP/d2049" > "$TMP/c2049"
"$TPEER" "$X" "sendtext:$(cat "$TMP/c2049")" shut eof:5000
check "legacy: disposable length 2049 refused, not run" test ! -e "$TMP/d2049"
check "legacy: agent alive after a refused command" kill -0 "$APID"
grep -q "longer than 2048" "$TMP/agent.log"; expect_eq "legacy: refusal says why" "$?" 0

# a command written in pieces arrives whole; the host keeps the line open
rm -f "$TMP/dsplit"
"$TPEER" "$X" "sendtext:echo spl" sleep:50 "sendtext:it > $TMP/dsp" sleep:50 "sendtext:lit" sleep:1500 close &
tp=$!
wait_for 5 test -s "$TMP/dsplit"
expect_eq "legacy: disposable split writes run whole, host keeping the connection open" "$(cat "$TMP/dsplit" 2>/dev/null)" split
wait "$tp"

rm -f "$TMP/dnul"
"$TPEER" "$X" "send:$(tohex "touch $TMP/dnul")00$(tohex garbage)" shut eof:5000
check "legacy: command with a NUL byte refused" test ! -e "$TMP/dnul"

r=$("$VSH" --legacy "$X" -- "$(sized_cmd 2049 /dev/null)" 2>&1); rc=$?
expect_eq "legacy: controller refuses a 2049-byte command itself" "$rc" 255
agent_stop

# --- persistent, listen mode ---
agent_listen persistent
X=$ADDR
rm -f "$TMP/xran" "$TMP/p2048"
sized_cmd 2048 "$TMP/p2048" > "$TMP/c2048"
"$TPEER" "$X" send:0000 "send:$(le16 1)$(tohex x)" "send:$(le16 2048)$(tohex "$(cat "$TMP/c2048")")" shut eof:5000
expect_eq "legacy: persistent length 0 and 1" "$(cat "$TMP/xran" 2>/dev/null)" ran
expect_eq "legacy: persistent length 2048 accepted" "$(cat "$TMP/p2048" 2>/dev/null)" ok

rm -f "$TMP/p2049"
sized_cmd 2049 "$TMP/p2049" > "$TMP/c2049"
"$TPEER" "$X" "send:$(le16 2049)$(tohex "$(cat "$TMP/c2049")")" eof:5000
expect_eq "legacy: persistent length 2049 refused and closed" "$?" 0
check "legacy: persistent 2049 not run" test ! -e "$TMP/p2049"
"$TPEER" "$X" send:ffff eof:5000
expect_eq "legacy: persistent length 65535 refused and closed" "$?" 0
check "legacy: agent alive after refusals" kill -0 "$APID"

rm -f "$TMP/psplit"
c="echo whole > $TMP/psplit"
h=$(le16 ${#c})$(tohex "$c")
"$TPEER" "$X" "send:$(echo "$h" | cut -c1-2)" sleep:100 "send:$(echo "$h" | cut -c3-12)" sleep:100 "send:$(echo "$h" | cut -c13-)" shut eof:5000
expect_eq "legacy: persistent split writes" "$(cat "$TMP/psplit" 2>/dev/null)" whole

rm -f "$TMP/many"
i=1
while [ $i -le 50 ]; do echo "echo $i >> $TMP/many"; i=$((i + 1)); done > "$TMP/cmds"
"$VSH" --legacy persistent "$X" < "$TMP/cmds"
expect_eq "legacy: 50 commands on one connection, in order" "$(tr '\n' ' ' < "$TMP/many")" "$(seq 1 50 | tr '\n' ' ')"

"$TPEER" "$X" "send:$(le16 10)$(tohex short)" close
check "legacy: truncated command does not kill the agent" kill -0 "$APID"
agent_stop

# --- dial mode: the agent connects to us, as vsock_guest_exec does ---
new_dial_addr
rm -f "$TMP/dial1" "$TMP/dial2"
printf 'echo a > %s/dial1\necho b > %s/dial2\n' "$TMP" "$TMP" | "$VSH" --listen "$LADDR" --legacy persistent -w 10 &
hp=$!
wait_for 5 addr_ready "$LADDR"
"$AGENT" "$DADDR" persistent 2>>"$TMP/agent.log"
expect_eq "legacy: dial-mode persistent agent exits 0 when the host closes" "$?" 0
wait "$hp"
expect_eq "legacy: dial-mode persistent commands ran" "$(cat "$TMP/dial1" "$TMP/dial2" 2>/dev/null | tr '\n' ' ')" "a b "

new_dial_addr
rm -f "$TMP/dial3"
"$VSH" --listen "$LADDR" --legacy -w 10 -- "echo c > $TMP/dial3; exit 5" &
hp=$!
wait_for 5 addr_ready "$LADDR"
"$AGENT" "$DADDR" 2>>"$TMP/agent.log"
expect_eq "legacy: dial-mode disposable agent exits with the command's status" "$?" 5
wait "$hp"
expect_eq "legacy: dial-mode disposable command ran" "$(cat "$TMP/dial3" 2>/dev/null)" c

new_dial_addr
"$TPEER" -l "$LADDR" send:0108 sleep:2000 &
tp=$!
wait_for 5 addr_ready "$LADDR"
"$AGENT" "$DADDR" persistent 2>>"$TMP/agent.log"
expect_eq "legacy: dial-mode agent refusing length 2049 exits 1, cleanly" "$?" 1
kill "$tp" 2>/dev/null; wait "$tp" 2>/dev/null

# vsock_guest_exec's address forms parse (only checked where no socket
# opens): an unparsable one is a usage error, status 2
for a in foo:bar 3:x 99999999999; do
	"$AGENT" "$a" 2>/dev/null; rc=$?
	expect_eq "legacy: unparsable address '$a' is an error" "$rc" 2
done

# --legacy checks everything before it listens or connects: a real
# vsock_guest_exec runs whatever is in its buffer when a connection closes
# early, so it must never see an empty, oversized or partial command
legacy_refused() { # NAME WANT-TEXT [STDIN-FILE] ARGS...: refused, and nothing listened
	lr_n=$1 lr_w=$2 lr_in=$3; shift 3
	new_dial_addr
	msg=$("$VSH" --listen "$LADDR" -w 5 --legacy "$@" < "$lr_in" 2>&1); rc=$?
	# nothing listens there: a connection to it fails
	if [ "$rc" = 255 ] && ! "$TPEER" "$DADDR" close 2>/dev/null && case $msg in *"$lr_w"*) true;; *) false;; esac; then
		t_ok "legacy: $lr_n: refused before listening"
	else
		t_fail "legacy: $lr_n: refused before listening" "rc=$rc $msg"
	fi
}
printf 'echo 1\necho 2\n%s\necho 4\n' "$(sized_cmd 2049 /dev/null)" > "$TMP/l3"
: > "$TMP/lempty"
printf '\n\n' > "$TMP/lblank"
legacy_refused "a 2049-byte disposable command" "exceeds 2048" /dev/null -- "$(sized_cmd 2049 /dev/null)"
legacy_refused "a disposable command that is empty" "empty command" /dev/null
legacy_refused "a 2049-byte persistent command" "exceeds 2048" /dev/null persistent -- "$(sized_cmd 2049 /dev/null)"
legacy_refused "a 2049-byte line among persistent commands on stdin" "on line 3 exceeds 2048" "$TMP/l3" persistent
legacy_refused "no command on stdin" "no command on stdin" "$TMP/lempty" persistent
legacy_refused "only blank lines on stdin" "no command on stdin" "$TMP/lblank" persistent
# blank lines are skipped, never sent as a zero-length command
new_dial_addr
printf 'echo 1\n\necho 2\n' | "$VSH" --listen "$LADDR" -w 10 --legacy persistent &
hp=$!
wait_for 5 addr_ready "$LADDR"
"$TPEER" "$DADDR" read:8 read:8 eof:5000 > "$TMP/lsent" 2>&1
wait "$hp"
expect_eq "legacy: blank stdin lines are not sent" "$(tr '\n' ' ' < "$TMP/lsent")" "$(printf '0600%s ' "$(tohex 'echo 1')")$(printf '0600%s ' "$(tohex 'echo 2')")"
PATH=$OPATH
