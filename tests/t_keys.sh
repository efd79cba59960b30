# keys: a key file that others than its owner may read or write is refused,
# as ssh refuses such a private key, by the agent, the controller and the
# hub, with words that name the file, its mode and the fix; mode 0600 is
# used (sourced by suite.sh).  A key that may have leaked proves nothing.

KD=$TMP/keys
rm -rf "$KD"; mkdir -p "$KD/hk" "$KD/cred"
printf 'a key for the key-mode tests\n' > "$KD/k"
chmod 600 "$KD/k"
# mode_is FILE MODE: FILE a copy of the key, of that mode
mode_is() { cp "$KD/k" "$1"; chmod "$2" "$1"; }
refusal() { echo "unable to use the key $1: its mode 0$2 lets others read or write it; chmod 600 $1"; }

# the agent: a file, and a systemd credential (the same check: systemd
# makes credentials 0400; a copy made with the default umask is 0644)
for m in 644 640 604 620 602; do
	mode_is "$KD/a$m.key" "$m"
	msg=$(timeout 5 "$AGENT" --listen "unix:$KD/a.sock" --key "$KD/a$m.key" 2>&1); rc=$?
	case "$rc:$msg" in
	1:*"$(refusal "$KD/a$m.key" "$m")"*) [ -e "$KD/a.sock" ] && t_fail "keys: agent, mode 0$m" "it listened" || t_ok "keys: the agent refuses a key file of mode 0$m, naming file and mode" ;;
	*) t_fail "keys: agent, mode 0$m" "rc=$rc $msg" ;;
	esac
done
cp "$KD/a644.key" "$KD/cred/vsock-shell.key"; chmod 644 "$KD/cred/vsock-shell.key"
msg=$(CREDENTIALS_DIRECTORY=$KD/cred timeout 5 "$AGENT" --listen "unix:$KD/a.sock" --key credential 2>&1); rc=$?
case "$rc:$msg" in 1:*"$(refusal "$KD/cred/vsock-shell.key" 644)"*) t_ok "keys: ...and a credential of mode 0644";; *) t_fail "keys: agent, credential 0644" "rc=$rc $msg";; esac
msg=$(CREDENTIALS_DIRECTORY=$KD/cred timeout 5 "$AGENT" --listen "unix:$KD/a.sock" 2>&1); rc=$?
case "$rc:$msg" in 1:*"$(refusal "$KD/cred/vsock-shell.key" 644)"*) t_ok "keys: ...found by --key auto too (not skipped for the next source)";; *) t_fail "keys: agent, auto credential 0644" "rc=$rc $msg";; esac

# a key of mode 0600 is used; the controller refuses one of 0644 before
# it connects
agent_listen --auth key --key "$KD/k"
r=$("$VSH" --key "$KD/k" "$ADDR" -- echo keyed 2>&1)
expect_eq "keys: a key file of mode 0600: agent and controller use it" "$r" keyed
mode_is "$KD/c.key" 644
n0=$(grep -c . "$TMP/agent.log")
msg=$("$VSH" --key "$KD/c.key" "$ADDR" -- echo should-not-run 2>&1); rc=$?
case "$rc:$msg" in 255:*"$(refusal "$KD/c.key" 644)"*) t_ok "keys: the controller refuses a key file of mode 0644, naming file and mode";; *) t_fail "keys: controller, mode 0644" "rc=$rc $msg";; esac
mode_is "$KD/c.key" 640
msg=$("$VSH" --key "$KD/c.key" "$ADDR" -- echo should-not-run 2>&1); rc=$?
case "$rc:$msg" in 255:*"$(refusal "$KD/c.key" 640)"*) t_ok "keys: ...and one its group may read";; *) t_fail "keys: controller, mode 0640" "rc=$rc $msg";; esac
expect_eq "keys: ...before it connects" "$(grep -c . "$TMP/agent.log")" "$n0"
agent_stop

# the hub: --key at its start; a guest's --keys DIR/NAME.key each time
# that guest's agent dials, without falling back to --key
msg=$(timeout 5 "$VSH" serve --vsock off --hub "$KD/hub.sock" --key "$KD/a644.key" 2>&1); rc=$?
case "$rc:$msg" in 255:*"$(refusal "$KD/a644.key" 644)"*) t_ok "keys: the hub refuses a --key file of mode 0644";; *) t_fail "keys: hub --key 0644" "rc=$rc $msg";; esac
mode_is "$KD/hk/kv.key" 644
VSOCK_SHELL_TIMEOUT=2 "$VSH" serve --vsock off --hub "$KD/hub.sock" --unix "kv=$KD/kv.sock" --keys "$KD/hk" \
	--key "$KD/k" 2>"$KD/hub.log" &
hp=$!
PIDS="$PIDS $hp"
wait_for 5 test -S "$KD/hub.sock"
"$AGENT" --reconnect --auth key --key "$KD/k" "unix:$KD/kv.sock" 2>>"$TMP/agent.log" &
kp=$!
PIDS="$PIDS $kp"
if wait_for 10 grep -qF "$(refusal "$KD/hk/kv.key" 644) (agent dropped)" "$KD/hub.log"; then
	t_ok "keys: the hub refuses a guest's key file of mode 0644, naming file and mode"
else t_fail "keys: hub --keys 0644" "$(cat "$KD/hub.log")"; fi
hub_kv_up() { VSOCK_SHELL_HUB=$KD/hub.sock "$VSH" ls 2>/dev/null | grep -q '^kv .* up '; }
check "keys: ...and does not fall back to --key for it" sh -c "! VSOCK_SHELL_HUB='$KD/hub.sock' '$VSH' ls | grep -q '^kv .* up '"
chmod 600 "$KD/hk/kv.key"
wait_for 15 hub_kv_up
r=$(VSOCK_SHELL_HUB=$KD/hub.sock "$VSH" @kv -- echo through-the-hub 2>&1)
expect_eq "keys: once the guest's key file is 0600, its agent gets in and serves" "$r" through-the-hub
kill "$kp" "$hp" 2>/dev/null; wait "$kp" "$hp" 2>/dev/null
# keygen: a new key of mode 0600, and it says what it wrote (-q: nothing);
# never over an existing file
msg=$("$VSH" keygen "$KD/new.key" 2>&1); rc=$?
case "$rc:$msg:$(stat -c %a "$KD/new.key" 2>/dev/null):$(wc -c < "$KD/new.key" 2>/dev/null | tr -d ' ')" in
0:*"wrote a new key to $KD/new.key (mode 0600)"*:600:65) t_ok "keys: keygen writes a key of mode 0600, and says where";;
*) t_fail "keys: keygen" "rc=$rc $msg" ;;
esac
r=$("$VSH" keygen -q "$KD/new2.key" 2>&1)
expect_eq "keys: ...keygen -q says nothing" "$?/$r/$(wc -c < "$KD/new2.key" | tr -d ' ')" "0//65"
cp "$KD/new.key" "$KD/new.copy"
msg=$("$VSH" keygen "$KD/new.key" 2>&1); rc=$?
case "$rc:$msg" in 255:*"unable to create $KD/new.key: File exists"*) cmp -s "$KD/new.key" "$KD/new.copy" && t_ok "keys: ...and never over an existing file" || t_fail "keys: keygen over a file" "changed";;
*) t_fail "keys: keygen over a file" "rc=$rc $msg" ;;
esac
rm -rf "$KD"
