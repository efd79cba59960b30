# fleet: what an orchestrator does with the hub (sourced by suite.sh):
# dial-backs handed out once under parallel load, fan-out to many guests,
# wait for a hub that is still starting, the cause of a refusal kept, ls
# and events fit for scripts, and the README's own hub examples run as
# pasted.  Guests reach the hub over Unix listeners, as in t_hub.sh.

FD=$TMP/fleet
rm -rf "$FD"; mkdir -p "$FD"
FHUB=$FD/hub.sock
if [ "$VS_TRANSPORT" = vsock ]; then FT=3; else FT=1; fi
# fleet_hub [OPTIONS...]: a hub (-v) for g1, g2, g3 and g10 on Unix
# listeners; its pid in FHP, its log in $FD/hub.log
fleet_hub() {
	# shellcheck disable=SC2086
	VSOCK_SHELL_TIMEOUT=$FT "$VSH" serve -v --vsock off --hub "$FHUB" --unix "g1=$FD/g1.sock" --unix "g2=$FD/g2.sock" \
		--unix "g3=$FD/g3.sock" --unix "g10=$FD/g10.sock" "$@" 2>>"$FD/hub.log" &
	FHP=$!
	PIDS="$PIDS $FHP"
	wait_for 5 test -S "$FHUB"
}
fleet_stop() { kill -TERM "$FHP" 2>/dev/null; wait "$FHP" 2>/dev/null; }
# fleet_agent NAME [AGENT-OPTIONS...]: an agent dialing that guest's path,
# --reconnect; its pid in FA_NAME
fleet_agent() {
	fa_n=$1; shift
	"$AGENT" --reconnect "$@" "unix:$FD/$fa_n.sock" 2>>"$FD/agent.log" &
	eval "FA_$fa_n=\$!"
	PIDS="$PIDS $!"
}
fleet_state() { VSOCK_SHELL_HUB=$FHUB "$VSH" ls 2>/dev/null | awk -v n="$1" '$1 == n { print $3 }'; }
fleet_up() { for fu_g; do [ "$(fleet_state "$fu_g")" = up ] || return 1; done; }
# the hub's log from line $1 on
log_since() { tail -n +"$1" "$FD/hub.log"; }

# --- dial-backs: each handed out once, to the client that asked for it ---
# 20 sessions at a time across two guests, twice: every session takes one
# dial-back (its own, or the standby), and none comes for nobody (a
# standby given to a client already waiting for its own dial-back left
# that one to be dropped as "unknown": 5 or 6 in 34 sessions)
fleet_hub
fleet_agent g1
fleet_agent g2
wait_for 5 fleet_up g1 g2
sleep 0.5 # their standbys
n0=$(($(wc -l < "$FD/hub.log") + 1))
bad=0
for r in 1 2; do
	i=0 pids=""
	while [ $i -lt 20 ]; do
		VSOCK_SHELL_HUB=$FHUB "$VSH" -n "@g$((i % 2 + 1))" -- "echo $r.$i" > "$FD/db$i" 2>&1 & pids="$pids $!"
		i=$((i + 1))
	done
	i=0
	for p in $pids; do
		wait "$p" && [ "$(cat "$FD/db$i")" = "$r.$i" ] || bad=$((bad + 1))
		i=$((i + 1))
	done
done
sleep 0.5 # the last standbys
dials=$(log_since "$n0" | grep -c 'dial-back from')
drops=$(log_since "$n0" | grep -c 'dropped a dial-back')
expect_eq "fleet: 40 sessions, 20 at a time across two guests, each right" "$bad" 0
expect_eq "fleet: ...no dial-back dropped as unknown" "$drops" 0
if [ "$dials" -le 42 ]; then t_ok "fleet: ...and $dials dial-backs for 40 sessions (at most one spare per guest)"
else t_fail "fleet: dial-backs for 40 sessions" "$dials, want at most 42"; fi
