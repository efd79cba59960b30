# readme: README.md's examples, as pasted (sourced by suite.sh); those of
# "## The hub: many guests" are t_fleet.sh's.  Every indented block of the
# README is accounted for, per section: a block this file does not know
# fails it, so that the README cannot drift from what is run.  Each block
#   - runs as pasted, with the rewrites below and nothing else, and its
#     documented outcome is checked (output, exit status, files); or,
#   - where it cannot run on this machine (it boots a VM, installs
#     packages, is a synopsis or a VM's transcript), is checked against
#     what it names: --help, the Makefile's targets, the files it runs.
# The tables of "## Addresses" and "## Exit status" are accounted for row
# by row the same way.
#
# The rewrites (rd_rewrite), the only change made to a block that runs:
#   - vsock addresses, never used on this machine, become this test's Unix
#     sockets in $RD/s:
#       --listen with no address (vsock:any:1023)  unix:$RD/s/host.sock
#       --listen any:PORT, vsock-agent :PORT       unix:$RD/s/portPORT.sock
#       the guest CID 3 as a target (vsock-shell 3, cp [-r] [--preserve] 3,
#       -w 30 3, ansible_host=3)                   unix:$RD/s/cid3.sock
#       "$cid" (a loop over the CIDs 3 4 5)        "unix:$RD/s/cid$cid.sock"
#   - the machine's absolute paths (/etc, /tmp, /var, /run, /srv,
#     /sysroot) move under the block's own root, $RD/r.BLOCK (/proc stays);
#   - vsock-agent and vsock-shell are this build's (PATH), the hub is this
#     test's ($VSOCK_SHELL_HUB), and `make` a stand-in (PATH) that finds
#     the build under test in the working directory.
# A rewritten block that still names a vsock address is not run (rd_safe).
# The guests are agents on this machine, run as the README says they run
# (our /init's: vsock-agent --retry --reconnect, dialing the host).

RD=$TMP/readme
RD_SRC=$SUITE_DIR/..
RD_README=$RD_SRC/README.md
if [ "$VS_TRANSPORT" != unix ]; then
	t_skip "readme: the README's examples" "they run on the host stage, over unix:"
elif [ ! -f "$RD_README" ]; then
	t_skip "readme: the README's examples" "no README.md beside tests/"
else

rm -rf "$RD"; mkdir -p "$RD/b" "$RD/s" "$RD/bin"
ln -s "$AGENT" "$RD/bin/vsock-agent"
ln -s "$VSH" "$RD/bin/vsock-shell"
cat > "$RD/bin/make" <<'EOS'
#!/bin/sh
# make (test stand-in): the build under test is already made
if [ $# = 0 ] && [ -x ./vsock-agent ] && [ -x ./vsock-shell ]; then
	echo "make (test stand-in): ./vsock-agent and ./vsock-shell are the build under test"
else
	echo "make (test stand-in): make $*?" >&2; exit 2
fi
EOS
chmod +x "$RD/bin/make"
RD_HUB=$RD/s/hub.sock
TAB=$(printf '\t')

# --- the blocks -------------------------------------------------------
# $RD/b/NN, and $RD/b/index: "NN<TAB>section" ("H2" or "H2 / H3").  A
# block begins with a line indented by 4 after a blank line (a list item's
# continuation lines are not one) and goes on over blank lines.
awk -v dir="$RD/b" '
	{ pb = blank; blank = ($0 ~ /^ *$/) }
	/^## / { h2 = substr($0, 4); sect = h2 }
	/^### / { sect = h2 " / " substr($0, 5) }
	/^    / {
		if (!f) {
			if (!pb) next
			f = sprintf("%s/%02d", dir, ++n)
			printf "%02d\t%s\n", n, sect > (dir "/index")
		}
		print substr($0, 5) > f; next
	}
	blank { if (f) print "" > f; next }
	{ if (f) close(f); f = "" }' "$RD_README"

rd_counts=$(cut -f2 "$RD/b/index" | grep -v '^The hub: many guests' | uniq -c | sed 's/^ *\([0-9]*\) \(.*\)/\2: \1;/' | tr '\n' ' ')
expect_eq "readme: the blocks per section (the hub's are t_fleet.sh's)" "$rd_counts" \
	"Quick start: 3; Building: 1; vsock-agent: the guest side: 1; vsock-shell: the host side: 1; vsock-shell: the host side / Sessions: 1; Recipes / Provisioning from the initrd: 3; Recipes / Many guests that listen: 1; Recipes / Emergency shell: 1; Recipes / Legacy vsock_guest_exec setups: 1; Recipes / Firecracker and cloud-hypervisor: 1; Recipes / Ansible: 1; File transfer: 2; File transfer / Provisioning example: 2; Forwarding: 1; Testing: 1; "

# each block to the case that handles it, by section and first line
rd_other="" rd_known=""
while IFS=$TAB read -r rd_n rd_sect; do
	rd_b=$RD/b/$rd_n
	case "$rd_sect|$(head -n 1 "$rd_b")" in
	'The hub: many guests'*) continue ;;
	'Quick start|make deps demo') k=qs_demo ;;
	'Quick start|== dial mode: '*) k=qs_transcript ;;
	'Quick start|make') k=qs_unix ;;
	'Building|make install '*) k=build_install ;;
	'vsock-agent: the guest side|vsock-agent [options] '*) k=agent_synopsis ;;
	'vsock-shell: the host side|vsock-shell [options] TARGET '*) k=shell_synopsis ;;
	'vsock-shell: the host side / Sessions|$ vsock-shell --detach '*) k=sessions ;;
	'Recipes / Provisioning from the initrd|vsock_agent.mode='*) k=prov_cmdline ;;
	'Recipes / Provisioning from the initrd|vsock-shell --listen -w '*) k=prov_listen ;;
	'Recipes / Provisioning from the initrd|vsock-shell --listen -u '*) k=prov_upload ;;
	'Recipes / Many guests that listen|for cid in '*) k=listen_many ;;
	'Recipes / Emergency shell|make initramfs '*) k=emergency ;;
	'Recipes / Legacy vsock_guest_exec setups|vsock-agent :'*) k=legacy ;;
	'Recipes / Firecracker and cloud-hypervisor|vsock-shell serve '*) k=fc ;;
	'Recipes / Ansible|export ANSIBLE_COLLECTIONS_PATH='*) k=ansible ;;
	'File transfer|vsock-shell 3 -u '*) k=xfer_seed ;;
	'File transfer|vsock-shell cp [-r] '*) k=xfer_cp ;;
	'File transfer / Provisioning example|vsock-shell wait '*) k=pex_hub ;;
	'File transfer / Provisioning example|vsock-shell --listen -u '*) k=pex_listen ;;
	'Forwarding|vsock-shell -N -v -L '*) k=fwd ;;
	'Testing|make host-bins && tests/run host '*) k=testing ;;
	*) rd_other="$rd_other [$rd_sect] $(head -n 1 "$rd_b")"; continue ;;
	esac
	if eval "[ -n \"\${RB_$k:-}\" ]"; then rd_other="$rd_other [twice] $k"; continue; fi
	eval "RB_$k=\$rd_b"
	rd_known="$rd_known $k"
done < "$RD/b/index"
expect_eq "readme: every block is one this test runs or checks" \
	"$rd_other|$(echo $rd_known | tr ' ' '\n' | sort | tr '\n' ' ')" \
	"|agent_synopsis ansible build_install emergency fc fwd legacy listen_many pex_hub pex_listen prov_cmdline prov_listen prov_upload qs_demo qs_transcript qs_unix sessions shell_synopsis testing xfer_cp xfer_seed "

# --- helpers ------------------------------------------------------------
# rd_prep KEY: the block's working directory RW and its root RR
rd_prep() { RW=$RD/w.$1 RR=$RD/r.$1; mkdir -p "$RW" "$RR"; }
# rd_rewrite FILE > OUT: the rewrites of the header, nothing else
rd_rewrite() {
	sed -E -e "s#(^|[ :'\">=])/(etc|tmp|var|run|srv|sysroot)/#\\1$RR/\\2/#g" \
		-e "s#--listen (-)#--listen unix:$RD/s/host.sock \\1#g" \
		-e "s#--listen any:([0-9]+)#--listen unix:$RD/s/port\\1.sock#g" \
		-e "s#vsock-agent :([0-9]+)#vsock-agent unix:$RD/s/port\\1.sock#g" \
		-e "s#(vsock-shell|cp|-r|--preserve|-w 30) 3( |\$)#\\1 unix:$RD/s/cid3.sock\\2#g" \
		-e "s#ansible_host=3 #ansible_host=unix:$RD/s/cid3.sock #g" \
		-e "s#\"\\\$cid\"#\"unix:$RD/s/cid\$cid.sock\"#g" "$1"
}
# rd_safe FILE: no vsock address left: every vsock-agent or vsock-shell
# command has a unix: or hybrid: address, a hub's @NAME, or --vsock off
rd_safe() {
	if grep -Eq 'vsock:|(^|[ =])any:|ansible_host=[^u]' "$1" ||
		grep -E '(^|[ (|;&/])vsock-(agent|shell)( |$)' "$1" | grep -Ev 'unix:|hybrid:|@|--vsock off' | grep -q .; then
		t_fail "readme: $(basename "$1"): still names a vsock address after the rewrites: not run" "$(head -c 300 "$1")"
		return 1
	fi
}
# rd_script BLOCK OUT: BLOCK rewritten into OUT, if it is safe to run
rd_script() { rd_rewrite "$1" > "$2" && rd_safe "$2"; }
# rd_sh FILE [ARGS]: run FILE (a rewritten block) in RW, bounded
rd_sh() {
	(cd "$RW" && PATH="$RD/bin:$PATH" VSOCK_SHELL_HUB=$RD_HUB timeout 20 sh "$@")
}
# rd_lines FILE: the logical lines of FILE (a trailing \ joins the next),
# as FILE.1, FILE.2 ...; prints how many
rd_lines() {
	awk -v f="$1" '{ l = l $0 "\n" } !/\\$/ { if (l ~ /[^ \n]/) printf "%s", l > (f "." ++n); l = "" }
		END { print n + 0 }' "$1"
}
# rd_each BLOCK CHECK: each logical line of BLOCK, rewritten, run on its
# own in RW (its stdout in RD_OUT, stderr in RD_ERR, status in RD_RC),
# then CHECK with the line as the README has it (RD_LINE)
rd_each() {
	re_b=$1 re_check=$2
	rd_script "$re_b" "$RW/b.sh" || return
	re_n=$(rd_lines "$RW/b.sh"); rd_lines "$re_b" > /dev/null
	re_i=1
	while [ "$re_i" -le "$re_n" ]; do
		RD_OUT=$RW/out.$re_i RD_ERR=$RW/err.$re_i
		rd_sh "$RW/b.sh.$re_i" > "$RD_OUT" 2> "$RD_ERR"; RD_RC=$?
		RD_LINE=$(tr '\n' ' ' < "$re_b.$re_i" | sed 's/  *$//')
		"$re_check" "$RD_LINE"
		re_i=$((re_i + 1))
	done
}
# rd_line_ok WANT-RC TEST...: the line's check: its status, then TEST
rd_line_ok() {
	rl_want=$1; shift
	if [ "$RD_RC" = "$rl_want" ] && "$@"; then t_ok "readme: $RD_LINE"
	else t_fail "readme: $RD_LINE" "status $RD_RC (want $rl_want): $(head -c 300 "$RD_ERR")"; fi
}
rd_no_check() { t_fail "readme: $RD_LINE" "a line this test has no check for"; }
# rd_bg VAR COMMAND...: COMMAND in the background, its pid in VAR
rd_bg() { rb_v=$1; shift; "$@" 2>>"$RD/agent.log" & eval "$rb_v=\$!"; PIDS="$PIDS $!"; }
# rd_exit PID: RD_RC is its exit status once it ends (10 s at most), or
# "running" (then it is killed)
rd_exit() {
	if wait_for 10 gone "$1"; then wait "$1"; RD_RC=$?; else kill "$1" 2>/dev/null; RD_RC=running; fi
}
rd_sock() { wait_for 5 test -S "$1"; }
rd_t() { timeout 10 "$@"; }
# rd_kill_agent TEXT: end the agent a block put in the background (by
# its pid), whose command line holds TEXT, a path of this test's
rd_kill_agent() {
	for f in /proc/[0-9]*/cmdline; do
		rk=${f%/cmdline}
		[ "$(cat "$rk/comm" 2>/dev/null)" = vsock-agent ] || continue
		tr '\0' ' ' 2>/dev/null < "$f" | grep -qF -- "$1" && kill "${rk#/proc/}" 2>/dev/null
	done
}
# rd_has FILE TEXT...: FILE holds every TEXT (fixed strings)
rd_has() { rh_f=$1; shift; for rh_t in "$@"; do grep -qF -- "$rh_t" "$rh_f" || return 1; done; }
# rd_tree DIR: path, type, mode and mtime of everything in DIR, links'
# targets, and which files share an inode (as "=FIRST")
rd_tree() {
	(cd "$1" && find . | sort | while read -r f; do
		if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"
		else echo "$f $(stat -c '%F %a %Y %i' "$f")"; fi
	done) | awk '{ if ($NF in ino) $NF = "=" ino[$NF]; else { ino[$NF] = $1; $NF = "" } print }'
}

# --- the guests ----------------------------------------------------------
# A hub for the examples that go through one (@web1, @vm1), as
# `systemctl start vsock-shell-hub` would have it, over Unix listeners;
# web1 and web2 dial it and stay, vm1 is provisioned below, g0 never comes.
rd_bg RD_HP "$VSH" serve --vsock off --hub "$RD_HUB" --unix "web1=$RD/s/web1.sock" --unix "web2=$RD/s/web2.sock" \
	--unix "vm1=$RD/s/vm1.sock" --unix "g0=$RD/s/g0.sock"
rd_bg RD_W1 "$AGENT" --retry --reconnect "unix:$RD/s/web1.sock"
rd_bg RD_W2 "$AGENT" --retry --reconnect "unix:$RD/s/web2.sock"
rd_bg RD_C4 "$AGENT" --listen "unix:$RD/s/cid4.sock"
RD_C3=""
rd_cid3() { [ -n "$RD_C3" ] || { rd_bg RD_C3 "$AGENT" --listen "unix:$RD/s/cid3.sock"; rd_sock "$RD/s/cid3.sock"; }; }

# --- Emergency shell: the agent comes up late; a login shell on a pty,
# whose exit status is vsock-shell's.  It runs beside the Quick start
# (both wait for a login shell), and is collected after it.
rd_em_pid=""
if [ -n "${RB_emergency:-}" ]; then
	rd_prep emergency
	grep '^vsock-shell ' "$RB_emergency" > "$RW/line"
	if rd_script "$RW/line" "$RW/b.sh"; then
		(sleep 0.5; exec "$AGENT" --listen "unix:$RD/s/cid3.sock" 2>>"$RD/agent.log") &
		RD_C3=$!; PIDS="$PIDS $RD_C3"
		cat > "$RW/pty" <<-'EOF'
		line tty; exit 7
		expect-re /dev/pts/[0-9]+
		wait 7
		EOF
		(cd "$RW" && PATH="$RD/bin:$PATH" TERM=xterm exec "$TPTY" -T 25 -t 15 "$RW/pty" -- sh "$RW/b.sh") 2>"$RW/tpty.err" &
		rd_em_pid=$!
	fi
fi
# --- Sessions: its transcript's commands run against web1 through the
# hub: --detach with its command rewritten (make -j8 all: echo all built;
# exit 3) prints an id; ps's header is the transcript's and lists it as
# exit 3; attach with that id gives its output and status; kill, with
# the id of a command of our own, ends it (143)
if [ -n "${RB_sessions:-}" ]; then
	rd_prep sessions
	grep '^\$ vsock-shell ' "$RB_sessions" | sed 's/^\$ //; s/  *#.*//' > "$RW/lines"
	rd_bg rs_pid env VSOCK_SHELL_HUB="$RD_HUB" "$VSH" -w 10 @web1 -- sleep 30
	rs_l1=$(sed -n 1p "$RW/lines" | sed "s/make -j8 all/'echo all built; exit 3'/")
	rs_id=$(cd "$RW" && VSOCK_SHELL_HUB=$RD_HUB PATH="$RD/bin:$PATH" timeout 10 sh -c "$rs_l1" 2>&1)
	rs_ps=""
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		rs_ps=$(VSOCK_SHELL_HUB=$RD_HUB rd_t "$VSH" ps @web1 2>&1)
		case $rs_ps in *"sleep 30"*) [ "$(echo "$rs_ps" | grep -F "$rs_id" | tr -s ' ' | cut -d' ' -f5)" = exit ] && break ;; esac
		sleep 0.5
	done
	rs_kid=$(echo "$rs_ps" | grep -F "sleep 30" | cut -d' ' -f1)
	expect_eq "readme: Sessions: '$rs_l1' prints an id; ps's header is the transcript's, and says exit 3" \
		"$(echo "$rs_id" | grep -c '^[0-9a-f]\{16\}$')|$(echo "$rs_ps" | head -n 1 | tr -s ' ')|$(echo "$rs_ps" | grep -F "$rs_id" | tr -s ' ' | cut -d' ' -f5,6)" \
		"1|$(sed -n 4p "$RB_sessions" | tr -s ' ')|exit 3"
	rs_a=$(sed -n 3p "$RW/lines" | sed "s/3f9a0c27d1e84b65/$rs_id/")
	rs_out=$(cd "$RW" && VSOCK_SHELL_HUB=$RD_HUB PATH="$RD/bin:$PATH" timeout 10 sh -c "$rs_a" 2>&1)
	expect_eq "readme: Sessions: '$rs_a' gives its output and exit status" "$rs_out|$?" "all built|3"
	rs_k=$(sed -n 4p "$RW/lines" | sed "s/b0e41d97aa5c2f18/$rs_kid/")
	rd_script "$RW/lines" "$RW/b.sh" && (cd "$RW" && VSOCK_SHELL_HUB=$RD_HUB PATH="$RD/bin:$PATH" timeout 10 sh -c "$rs_k")
	rs_krc=$?
	rd_exit "$rs_pid"
	expect_eq "readme: Sessions: '$rs_k' (the id ps listed) ends the command: SIGTERM, 143" \
		"$(sed -n 2p "$RW/lines")|${rs_kid:+id}|$rs_krc|$RD_RC" "vsock-shell ps @web1|id|0|143"
fi

# --- Forwarding: -L through the hub to web1, whose side is this machine,
# where a stand-in web server answers on its port 18000; curl as pasted.
# The -W line needs an sshd in the guest: its -W and ProxyCommand are
# checked against --help.
if [ -n "${RB_fwd:-}" ]; then
	rd_prep fwd
	rd_bg rf_srv "$VS_BIN/tfwd" serve tcp:127.0.0.1:18000 \
		"head -n 1 > /dev/null; printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello from the guest\\n'"
	rf_l1=$(sed -n 1p "$RB_fwd" | sed 's/ *&.*//')
	printf '%s\n' "$rf_l1" > "$RW/l1"
	if rd_safe "$RW/l1"; then
		# its words, so that the pid is vsock-shell's (a line of plain words)
		(cd "$RW" && export VSOCK_SHELL_HUB="$RD_HUB" PATH="$RD/bin:$PATH" && exec $rf_l1) >/dev/null 2>"$RW/fwd.err" &
		rf_pid=$!; PIDS="$PIDS $rf_pid"
		wait_for 10 grep -q "forwarding 127.0.0.1:18080 to 127.0.0.1:18000 in the guest" "$RW/fwd.err"
		rf_out=$(cd "$RW" && PATH="$RD/bin:$PATH" timeout 10 sh -c "$(sed -n 2p "$RB_fwd")")
		expect_eq "readme: Forwarding: '$rf_l1', then curl: the guest's web server answers" "$rf_out" \
			"hello from the guest"
		kill "$rf_pid" "$rf_srv" 2>/dev/null
	fi
	rf_l3=$(sed -n 3p "$RB_fwd")
	case "$rf_l3|$("$VSH" --help)" in
	"vsock-shell -W localhost:22 @web1 "*"# ssh -o ProxyCommand='vsock-shell -W localhost:22 @web1' web1|"*"-W HOST:PORT | PATH"*"ProxyCommand"*)
		t_ok "readme: Forwarding: -W as ssh's ProxyCommand (not run: no sshd in the guest), as --help has it" ;;
	*) t_fail "readme: Forwarding: -W as ssh's ProxyCommand" "$rf_l3" ;;
	esac
fi

# --- blocks that cannot run here: checked against what they name -------
rd_mk=$RD_SRC/Makefile
rd_agent_help=$("$AGENT" --help 2>&1)
rd_vsh_help=$("$VSH" --help 2>&1)

# make deps demo: installs packages (apt-get) and boots a VM
if [ -n "${RB_qs_demo:-}" ]; then
	grep -A1 '^deps:' "$rd_mk" | grep -q 'scripts/setup' && grep -A1 '^demo:' "$rd_mk" | grep -q 'scripts/run-vm --demo' &&
		grep -q -- '--demo)' "$RD_SRC/scripts/run-vm"
	expect_eq "readme: make deps demo (not run: apt-get, a VM): deps runs scripts/setup, demo scripts/run-vm --demo" "$?" 0
fi

# the demo's transcript: what initramfs/demo prints in its VM; each step
# and each command shown is one of the demo's
if [ -n "${RB_qs_transcript:-}" ]; then
	rd_miss=""
	while IFS= read -r l; do
		case $l in
		'== '*' ==') t=${l#== }; grep -qF "step \"${t% ==}\"" "$RD_SRC/initramfs/demo" || rd_miss="$rd_miss|$l" ;;
		'$ '*) grep -qF "show \"${l#\$ }\"" "$RD_SRC/initramfs/demo" || rd_miss="$rd_miss|$l" ;;
		'exit status '*) grep -qF 'echo "exit status $?"' "$RD_SRC/initramfs/demo" || rd_miss="$rd_miss|$l" ;;
		'...' | 'Linux '* | '') ;;
		*) rd_miss="$rd_miss|$l" ;;
		esac
	done < "$RB_qs_transcript"
	expect_eq "readme: Quick start's transcript (a VM's): every step and command shown is initramfs/demo's" "$rd_miss" ""
fi

# the synopses are the programs' own usage lines (the notes after two
# spaces or in parentheses left aside)
rd_usage() { grep -E '^(usage:)? +vsock-(agent|shell) ' | sed -E 's/^(usage:)? +//; s/  .*//'; }
if [ -n "${RB_agent_synopsis:-}" ]; then
	expect_eq "readme: vsock-agent's synopsis is its --help's usage" "$(grep . "$RB_agent_synopsis" | sed -E 's/  .*//')" \
		"$(echo "$rd_agent_help" | rd_usage)"
fi
if [ -n "${RB_shell_synopsis:-}" ]; then
	expect_eq "readme: vsock-shell's synopsis is its --help's usage" "$(grep . "$RB_shell_synopsis" | sed -E 's/  +\(.*\)$//; s/ +$//')" \
		"$(echo "$rd_vsh_help" | rd_usage)"
fi

# the kernel command line: every vsock_agent. parameter is one /init
# reads, and the mode one it has
if [ -n "${RB_prov_cmdline:-}" ]; then
	rd_miss=""
	for w in $(cat "$RB_prov_cmdline"); do
		k=${w%%=*} v=${w#*=}
		k=${k#vsock_agent.}
		grep -Eq "^[[:space:]]+$k\) " "$RD_SRC/initramfs/init" || rd_miss="$rd_miss $w"
		[ "$k" != mode ] || grep -q "^$v) mode_$v" "$RD_SRC/initramfs/init" || rd_miss="$rd_miss $w"
	done
	expect_eq "readme: provisioning's kernel command line: /init reads each parameter" "$rd_miss" ""
fi

# the emergency shell's first two lines build an image and boot a VM
if [ -n "${RB_emergency:-}" ]; then
	rd_miss=""
	while read -r l; do
		case $l in
		'make initramfs '*) grep -q '^initramfs:' "$rd_mk" || rd_miss="$rd_miss|$l" ;;
		'scripts/run-vm '*)
			for o in ${l%%&*}; do
				case $o in --*) grep -q -- "	$o)" "$RD_SRC/scripts/run-vm" || rd_miss="$rd_miss|$o" ;; esac
			done
			grep -q 'vhost-vsock-pci,guest-cid=' "$RD_SRC/scripts/run-vm" || rd_miss="$rd_miss|vhost-vsock-pci" ;;
		'vsock-shell '* | '') ;; # run below
		*) rd_miss="$rd_miss|$l" ;;
		esac
	done < "$RB_emergency"
	expect_eq "readme: emergency shell: make initramfs and scripts/run-vm --cid --listen (not run: a VM) exist" "$rd_miss" ""
fi

# the Testing section's commands run this suite and the VM: they name
# real make targets, scripts, stages, groups and variables
if [ -n "${RB_testing:-}" ]; then
	rd_miss=""
	set -f
	for w in $(tr -d '\\' < "$RB_testing" | sed 's/#.*also://'); do
		case $w in
		tests/[a-z]*) [ -e "$RD_SRC/$w" ] || rd_miss="$rd_miss $w" ;;
		build/vsguard) grep -q 'build/vsguard' "$rd_mk" || rd_miss="$rd_miss $w" ;;
		VS_*=*) grep -rqF --exclude=t_readme.sh "${w%%=*}" "$RD_SRC/tests" || rd_miss="$rd_miss $w" ;;
		esac
	done
	set +f
	for t in $(sed -n 's/.*make \([a-z-]*\) .*/\1/p' "$RB_testing"); do
		grep -q "^$t:" "$rd_mk" || rd_miss="$rd_miss make:$t"
	done
	for s in $(sed -n 's/.*tests\/run \([a-z]*\) .*also: //p' "$RB_testing" | tr -d ,) \
		$(sed -n 's/.*tests\/run \([a-z]*\) .*/\1/p' "$RB_testing"); do
		{ grep -q "^if has $s; then" "$RD_SRC/tests/run" || grep -q "^	has $s && vm_stage $s " "$RD_SRC/tests/run" ||
			grep -q "^	if has $s; then" "$RD_SRC/tests/run"; } || rd_miss="$rd_miss stage:$s"
	done
	for g in $(sed -n 's/.*tests\/suite.sh \([a-z]*\).*/\1/p; s/.*VS_FAULT_GROUPS=\([a-z]*\).*/\1/p' "$RB_testing"); do
		[ -f "$RD_SRC/tests/t_$g.sh" ] || rd_miss="$rd_miss group:$g"
	done
	grep -q 'VS_VM_BOOTS=suite' "$RB_testing" && grep -q '^	suite) ' "$RD_SRC/tests/vm-run" || rd_miss="$rd_miss boot:suite"
	expect_eq "readme: Testing's commands (not run: the suite in the suite, a VM) name real targets, scripts, stages, groups, variables" "$rd_miss" ""
fi

# make install into a DESTDIR: run from the tree, when the build is up
# to date (install must not build it here)
if [ -n "${RB_build_install:-}" ]; then
	rd_prep build_install
	rd_mkq() { (cd "$RD_SRC" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL timeout 20 "$@"); }
	if ! rd_script "$RB_build_install" "$RW/b.sh"; then :
	elif ! rd_mkq make -q all 2>/dev/null; then
		t_skip "readme: make install PREFIX=/usr DESTDIR=/tmp/pkg" "the build in the tree is not up to date"
	else
		rd_mkq sh "$RW/b.sh" > "$RW/out" 2>&1; rc=$?
		p=$RR/tmp/pkg/usr
		if [ $rc = 0 ] && cmp -s "$p/bin/vsock-agent" "$RD_SRC/vsock-agent" && cmp -s "$p/bin/vsock-shell" "$RD_SRC/vsock-shell" &&
			grep -q '^ExecStart=/usr/bin/vsock-shell serve' "$p/lib/systemd/system/vsock-shell-hub.service" &&
			grep -q '^ExecStart=/usr/bin/vsock-agent' "$p/lib/systemd/system/vsock-agent.service" &&
			[ -f "$p/share/man/man1/vsock-shell.1" ] && [ -f "$p/share/man/man8/vsock-agent.8" ] &&
			[ -f "$p/share/bash-completion/completions/vsock-shell" ]; then
			t_ok "readme: make install PREFIX=/usr DESTDIR=/tmp/pkg: the programs, units, man pages and completion under DESTDIR/usr"
		else
			t_fail "readme: make install PREFIX=/usr DESTDIR=/tmp/pkg" "status $rc: $(find "$RR" | head -n 20 | tr '\n' ' ') $(head -c 300 "$RW/out")"
		fi
	fi
fi

# --- Quick start without a VM: typed into an interactive shell on a pty,
# line by line, as a person pastes it; the agent is given half a second
# to listen after its line, as the person's next keystrokes would
if [ -n "${RB_qs_unix:-}" ]; then
	rd_prep qs_unix; mkdir -p "$RR/tmp"
	ln -s "$AGENT" "$RW/vsock-agent"; ln -s "$VSH" "$RW/vsock-shell"
	if rd_script "$RB_qs_unix" "$RW/b.sh"; then
		rd_miss=""
		printf 'timeout 15\nexpect qs$\\s\n' > "$RW/pty"
		while IFS= read -r l; do
			[ -n "$l" ] || continue
			printf 'line %s\n' "$(printf '%s' "$l" | sed 's/\\/\\\\/g')" >> "$RW/pty"
			case $l in
			make) echo "expect are the build under test" ;;
			*' --listen unix:'*'&') echo "sleep 500" ;;
			*"-- 'uname -r; exit 3'; echo \"status \$?\"") printf 'expect %s\nexpect status 3\n' "$(uname -r)" ;;
			*' # a login shell on a pty') printf 'line echo R""DY; tty; exit\nexpect RDY\nexpect-re /dev/pts/[0-9]+\n' ;;
			'kill %1; cat '*) printf 'expect exec from unix peer\nexpect shell from unix peer\n' ;;
			*) rd_miss="$rd_miss|$l" ;;
			esac >> "$RW/pty"
			printf 'expect qs$\\s\n' >> "$RW/pty" # the prompt: the line is done
		done < "$RW/b.sh"
		printf 'line exit\nwait 0\n' >> "$RW/pty"
		(cd "$RW" && PATH="$RD/bin:$PATH" TERM=xterm PS1='qs$ ' "$TPTY" -T 25 -t 15 -o "$RW/pty.log" "$RW/pty" -- sh -i) 2>"$RW/tpty.err"; rc=$?
		wait_for 5 sh -c "! test -e '$RR/tmp/agent.sock'"
		r="$rc/$rd_miss/$(grep -c ' from unix peer ' "$RR/tmp/agent.log" 2>&1)/$(test -e "$RR/tmp/agent.sock" && echo socket left)"
		if [ "$r" = "0//2/" ]; then
			t_ok "readme: Quick start over a Unix socket, pasted into a shell: status 3, a login shell on a pty, an audit line each, kill %1 removes the socket"
		else
			t_fail "readme: Quick start over a Unix socket" "$r: $(tr '\n' ' ' < "$RW/tpty.err" | cut -c1-600)"
		fi
		rd_kill_agent "$RR/tmp/agent.sock"
	fi
fi

if [ -n "$rd_em_pid" ]; then
	RW=$RD/w.emergency
	if wait "$rd_em_pid"; then
		t_ok "readme: emergency shell: $(sed 's/ *#.*//' "$RW/line"): waits for the agent, a login shell on a pty, exit 7 is its status"
	else
		t_fail "readme: emergency shell: $(cat "$RW/line")" "$(tr '\n' ' ' < "$RW/tpty.err" | cut -c1-500)"
	fi
fi
rd_cid3

# --- Provisioning from the initrd, one guest without the hub: the agent
# dials as /init runs it; a failed command leaves it waiting for the
# next host, a successful one releases it
if [ -n "${RB_prov_listen:-}" ]; then
	rd_prep prov_listen; mkdir -p "$RR/sysroot"
	if rd_script "$RB_prov_listen" "$RW/b.sh"; then
		rd_bg ap "$AGENT" --retry --reconnect "unix:$RD/s/host.sock"
		rd_sh "$RW/b.sh" > "$RW/out1" 2>&1; rc1=$?
		if alive "$ap"; then a1=waiting; else a1=gone; fi
		mkdir "$RR/sysroot/etc"
		rd_sh "$RW/b.sh" > "$RW/out2" 2>&1; rc2=$?
		rd_exit "$ap"
		expect_eq "readme: $(cat "$RB_prov_listen"): no /sysroot/etc: fails, the agent waits; then it succeeds and releases the agent" \
			"$([ $rc1 != 0 ] && echo failed)/$a1/$rc2/$RD_RC/$(cat "$RR/sysroot/etc/motd" 2>&1)" "failed/waiting/0/0/provisioned"
	fi
fi
# rd_provision KEY BLOCK ROOT-DIR: files pushed, a script run by one
# vsock-shell --listen, the agent released
rd_provision() {
	rd_prep "$1"; mkdir -p "$RR$3/etc" "$RR$3/tmp"
	echo "net $1" > "$RW/network.conf"
	printf '#!/bin/sh\necho "firstboot: $(cat %s/etc/network.conf)" > %s/etc/firstboot.done\n' "$RR$3" "$RR$3" > "$RW/firstboot.sh"
	rd_script "$2" "$RW/b.sh" || return
	rd_bg ap "$AGENT" --retry --reconnect "unix:$RD/s/host.sock"
	rd_sh "$RW/b.sh" > "$RW/out" 2>&1; rc=$?
	rd_exit "$ap"
	expect_eq "readme: $(tr -d '\\\n' < "$2" | tr -s ' '): files up, the script run, the agent released" \
		"$rc/$RD_RC/$(cat "$RR$3/etc/network.conf" "$RR$3/etc/firstboot.done" 2>&1 | tr '\n' ' ')" "0/0/net $1 firstboot: net $1 "
}
[ -z "${RB_prov_upload:-}" ] || rd_provision prov_upload "$RB_prov_upload" /sysroot
[ -z "${RB_pex_listen:-}" ] || rd_provision pex_listen "$RB_pex_listen" ""

# --- Many guests that listen: CIDs 3 and 4 up, 5 half a second late (-w 30)
if [ -n "${RB_listen_many:-}" ]; then
	rd_prep listen_many
	if rd_script "$RB_listen_many" "$RW/b.sh"; then
		(sleep 0.5; exec "$AGENT" --listen "unix:$RD/s/cid5.sock" 2>>"$RD/agent.log") &
		RD_C5=$!; PIDS="$PIDS $RD_C5"
		rd_sh "$RW/b.sh" > "$RW/out" 2>&1; rc=$?
		expect_eq "readme: many guests that listen: a session each in parallel, one guest still booting" \
			"$rc/$(sort "$RW/out" | tr '\n' ' ')/$(cat "$RW/out.3" "$RW/out.4" "$RW/out.5" 2>&1 | grep -c 'load average')" \
			"0/guest 3: status 0 guest 4: status 0 guest 5: status 0 /3"
	fi
fi

# --- Legacy: each pair's host line first (it listens), then its guest
# line (the agent dials once, as vsock_guest_exec's host tool listened
# before its guests came)
if [ -n "${RB_legacy:-}" ]; then
	rd_prep legacy; mkdir -p "$RR/run"
	printf 'touch %s/run/one\necho two > %s/run/two\n' "$RR" "$RR" > "$RW/commands.txt"
	if rd_script "$RB_legacy" "$RW/b.sh"; then
		r=""
		for c in 1 2; do
			awk -v c=$c 'BEGIN { RS = "" } NR == c' "$RW/b.sh" > "$RW/pair"
			grep '# host' "$RW/pair" > "$RW/host"; grep '# guest' "$RW/pair" > "$RW/guest"
			(cd "$RW" && PATH="$RD/bin:$PATH" exec timeout 20 sh "$RW/host") > "$RW/host.out" 2>&1 &
			hp=$!; PIDS="$PIDS $hp"
			rd_sock "$(sed -n 's/.*--listen unix:\([^ ]*\).*/\1/p' "$RW/host")"
			rd_sh "$RW/guest" 2>>"$RD/agent.log"; grc=$?
			rd_exit "$hp"
			r="$r $RD_RC/$grc"
		done
		wait_for 5 test -f "$RR/run/done"
		expect_eq "readme: legacy, persistent then disposable: both hosts 0, the agents 0 (host closed; touch's status), the commands run" \
			"$r/$(cat "$RR/run/two" 2>&1)/$(ls "$RR/run" | tr '\n' ' ')" " 0/0 0/0/two/done one two "
	fi
fi

# --- Firecracker and cloud-hypervisor: the guest's dial to port 1023
# arrives at <uds_path>_1023, where first the hub, then one vsock-shell
# listens.  The hybrid line meets a stand-in VMM that has no listener
# in the guest (it reads the CONNECT line and closes, as Firecracker
# does): a real agent cannot stand behind a Unix relay, whose handshake
# its proof rightly refuses (it binds the socket's path).
if [ -n "${RB_fc:-}" ]; then
	rd_prep fc; mkdir -p "$RR/srv/vm1"
	if rd_script "$RB_fc" "$RW/b.sh" && [ "$(rd_lines "$RW/b.sh")" = 3 ]; then
		rd_bg ap "$AGENT" --retry --reconnect "unix:$RR/srv/vm1/v.sock_1023"
		(cd "$RW" && PATH="$RD/bin:$PATH" VSOCK_SHELL_HUB=$RD/s/fchub.sock exec timeout 20 sh "$RW/b.sh.1") 2>"$RW/hub.log" &
		hp=$!; PIDS="$PIDS $hp"
		VSOCK_SHELL_HUB=$RD/s/fchub.sock "$VSH" wait @vm1 -w 10 2>"$RW/err"
		r=$(VSOCK_SHELL_HUB=$RD/s/fchub.sock rd_t "$VSH" @vm1 -- uname -a 2>>"$RW/err"); rc=$?
		kill -TERM "$hp"; rd_exit "$hp"
		wait_for 5 sh -c "! test -e '$RR/srv/vm1/v.sock_1023' && ! test -e '$RD/s/fchub.sock'"
		expect_eq "readme: $(head -n 1 "$RB_fc" | sed 's/ *#.*//'): the VM is @vm1, by its path; SIGTERM stops the hub, its sockets removed" \
			"$rc/$r/$(ls -A "$RR/srv/vm1")$(test -e "$RD/s/fchub.sock" && echo fchub.sock)" "0/$(uname -a)/"
		r=$(rd_sh "$RW/b.sh.2" 2>"$RW/err"); rc=$?
		rd_exit "$ap"
		expect_eq "readme: $(sed -n 2p "$RB_fc" | sed 's/ *#.*//'): a session; the agent released" "$rc/$r/$RD_RC" "0/$(uname -a)/0"
		"$VSH" keygen "$RW/vm1.key" 2>/dev/null
		"$TPEER" -l "unix:$RR/srv/vm1/v.sock" read:13 close > "$RW/vmm.out" 2>&1 &
		vp=$!; PIDS="$PIDS $vp"
		rd_sock "$RR/srv/vm1/v.sock"
		rd_sh "$RW/b.sh.3" > /dev/null 2>"$RW/err"; rc=$?
		rd_exit "$vp"
		expect_eq "readme: $(sed -n 3p "$RB_fc"): CONNECT 1024 to the VMM's socket, with the key; no listener in the guest: a clear error" \
			"$rc/$(head -n 1 "$RW/vmm.out")/$(grep -c 'refused the connection to guest port 1024' "$RW/err")" \
			"255/$(printf 'CONNECT 1024\n' | od -An -tx1 | tr -d ' \n')/1"
	else
		t_fail "readme: Firecracker and cloud-hypervisor: three lines" "$(cat "$RB_fc")"
	fi
fi

# --- Ansible: the collection from the tree, an inventory for vm3 (the
# agent at CID 3), ping; beside the file transfers, collected after them
rd_an_pid=""
if [ -n "${RB_ansible:-}" ]; then
	rd_prep ansible
	if ! command -v ansible >/dev/null 2>&1; then
		t_skip "readme: Ansible: ansible -i inventory vm3 -m ping" "ansible-core is not installed"
	elif rd_script "$RB_ansible" "$RW/b.sh"; then
		ln -s "$RD_SRC/ansible_collections" "$RW/ansible_collections"
		mkdir -p "$RR/tmp" "$RD/ansible"
		(cd "$RW" && PATH="$RD/bin:$PATH" HOME=$RD/ansible ANSIBLE_HOME=$RD/ansible ANSIBLE_LOCAL_TEMP=$RD/ansible/tmp \
			ANSIBLE_REMOTE_TEMP=$RR/tmp ANSIBLE_NOCOLOR=1 exec timeout 30 sh "$RW/b.sh") > "$RW/out" 2>&1 &
		rd_an_pid=$!
	fi
fi

# --- File transfer: the seed client's flags
rd_check_seed() {
	case $1 in
	'vsock-shell 3 -u ./app.conf:/etc/app.conf -u ./setup.sh:/tmp/setup.sh -- sh /tmp/setup.sh')
		rd_line_ok 0 rd_has "$RR/tmp/setup.out" "setup ran: app v1" ;;
	'vsock-shell 3 -d /var/log/boot.log:./boot.log')
		rd_line_ok 0 cmp -s "$RR/var/log/boot.log" "$RW/boot.log" ;;
	*) rd_no_check ;;
	esac
}
if [ -n "${RB_xfer_seed:-}" ]; then
	rd_prep xfer_seed; mkdir -p "$RR/etc" "$RR/tmp" "$RR/var/log"
	echo "app v1" > "$RW/app.conf"
	printf '#!/bin/sh\necho "setup ran: $(cat %s/etc/app.conf)" > %s/tmp/setup.out\n' "$RR" "$RR" > "$RW/setup.sh"
	echo "boot log" > "$RR/var/log/boot.log"
	rd_each "$RB_xfer_seed" rd_check_seed
fi

# --- File transfer: cp.  The synopsis: its first line run with every
# option, its placeholders filled (no agent there: a connection failure,
# not a usage error); the others are forms of --help's.  Then each example.
rd_check_cp() {
	case $1 in
	'vsock-shell cp 3 ./app.conf :/etc/ '*)
		rd_line_ok 0 cmp -s "$RW/app.conf" "$RR/etc/app.conf" ;;
	'vsock-shell cp -r --preserve 3 ./rootfs-overlay :/sysroot/ '*)
		rd_line_ok 0 [ "$(rd_tree "$RW/rootfs-overlay")" = "$(rd_tree "$RR/sysroot/rootfs-overlay")" ] ;;
	'vsock-shell cp 3 :/var/log/messages ./guest.log '*)
		rd_line_ok 0 cmp -s "$RR/var/log/messages" "$RW/guest.log" ;;
	'vsock-shell cp -r 3 :/etc/ssl/certs ./certs-3 '*)
		rd_line_ok 0 [ "$(cat "$RW/certs-3/ca.pem")/$(readlink "$RW/certs-3/ca-link.pem")/$(readlink "$RW/certs-3/abs.pem")" = \
			"a certificate/ca.pem//etc/ssl/certs/ca.pem" ] ;;
	'tar c ./bundle | vsock-shell cp 3 - :/tmp/bundle.tar '*)
		rd_line_ok 0 [ "$(tar tf "$RR/tmp/bundle.tar" 2>&1 | sort | tr '\n' ' ')" = "./bundle/ ./bundle/a ./bundle/b " ] ;;
	'vsock-shell cp 3 :/proc/cpuinfo - | grep flags '*)
		rd_line_ok 0 [ "$(cat "$RD_OUT")" = "$(grep flags /proc/cpuinfo)" ] ;;
	'vsock-shell cp @web1:/etc/hostname . '*)
		rd_line_ok 0 cmp -s "$RR/etc/hostname" "$RW/hostname" ;;
	'vsock-shell cp -r ./site @web1:/srv/ '*)
		rd_line_ok 0 cmp -s "$RW/site/index.html" "$RR/srv/site/index.html" ;;
	*) rd_no_check ;;
	esac
}
if [ -n "${RB_xfer_cp:-}" ]; then
	rd_prep xfer_cp
	awk 'BEGIN { RS = "" } NR == 1' "$RB_xfer_cp" > "$RW/synopsis"
	awk 'BEGIN { RS = "" } NR == 2' "$RB_xfer_cp" > "$RW/examples"
	echo x > "$RW/src"
	rd_syn=$(head -n 1 "$RW/synopsis" | sed -e 's/\[\([^]]*\)\]/\1/g' -e 's/ PORT / 1 /; s/ SECS / 0 /' \
		-e "s#TARGET SRC\\.\\.\\. DST#unix:$RD/s/nowhere.sock ./src :dst#")
	# shellcheck disable=SC2086
	(cd "$RW" && PATH="$RD/bin:$PATH" timeout 10 $rd_syn) 2>"$RW/err"; rc=$?
	sed 1d "$RW/synopsis" | while read -r l; do
		echo "$rd_vsh_help" | grep -qF -- "${l#vsock-shell cp \[options\] }" || echo "$l"
	done > "$RW/miss"
	expect_eq "readme: cp's synopsis: every option of its first line accepted; the other forms --help's" \
		"$rc/$(grep -c "unable to connect to unix:$RD/s/nowhere.sock" "$RW/err")/$(cat "$RW/miss")" "255/1/"
	# what the examples copy: the guest's (under RR) and ours (in RW)
	mkdir -p "$RR/etc/ssl/certs" "$RR/sysroot" "$RR/var/log" "$RR/tmp" "$RR/srv"
	echo "app v2" > "$RW/app.conf"
	mkdir -p "$RW/rootfs-overlay/etc" "$RW/rootfs-overlay/usr/bin"
	echo motd > "$RW/rootfs-overlay/etc/motd"; chmod 640 "$RW/rootfs-overlay/etc/motd"
	echo tool > "$RW/rootfs-overlay/usr/bin/tool"; chmod 4755 "$RW/rootfs-overlay/usr/bin/tool"
	ln "$RW/rootfs-overlay/usr/bin/tool" "$RW/rootfs-overlay/usr/bin/tool2"
	ln -s ../etc/motd "$RW/rootfs-overlay/usr/motd-link"
	chmod 750 "$RW/rootfs-overlay/usr"
	touch -d '2020-01-02 03:04:05' "$RW/rootfs-overlay/etc/motd" "$RW/rootfs-overlay/usr/bin/tool" "$RW/rootfs-overlay/usr/bin" \
		"$RW/rootfs-overlay/usr" "$RW/rootfs-overlay/etc" "$RW/rootfs-overlay"
	printf 'line one\nline two\n' > "$RR/var/log/messages"
	echo "a certificate" > "$RR/etc/ssl/certs/ca.pem"
	ln -s ca.pem "$RR/etc/ssl/certs/ca-link.pem"; ln -s /etc/ssl/certs/ca.pem "$RR/etc/ssl/certs/abs.pem"
	mkdir -p "$RW/bundle"; echo a > "$RW/bundle/a"; echo b > "$RW/bundle/b"
	echo web1-host > "$RR/etc/hostname"
	mkdir -p "$RW/site"; echo '<p>site</p>' > "$RW/site/index.html"
	VSOCK_SHELL_HUB=$RD_HUB "$VSH" wait @web1 -w 10
	printf '%s\n' "$(cat "$RW/examples")" > "$RW/examples.b"
	rd_each "$RW/examples.b" rd_check_cp
fi

# --- The provisioning example, through the hub: vm1 dials it
rd_check_pex() {
	case $1 in
	'vsock-shell wait @vm1 -w 120') rd_line_ok 0 true ;;
	'vsock-shell cp @vm1 ./network.conf :/etc/network.conf') rd_line_ok 0 cmp -s "$RW/network.conf" "$RR/etc/network.conf" ;;
	'vsock-shell cp @vm1 ./firstboot.sh :/tmp/') rd_line_ok 0 cmp -s "$RW/firstboot.sh" "$RR/tmp/firstboot.sh" ;;
	'vsock-shell @vm1 -- sh /tmp/firstboot.sh') rd_line_ok 0 test -f "$RR/var/log/firstboot.log" ;;
	'vsock-shell cp @vm1 :/var/log/firstboot.log ./vm1-firstboot.log')
		rd_line_ok 0 [ "$(cat "$RW/vm1-firstboot.log")" = "firstboot: net vm1" ] ;;
	'vsock-shell release @vm1 '*) rd_exit "$RD_VM1"; rd_line_ok 0 [ "$RD_RC" = 0 ] ;;
	*) rd_no_check ;;
	esac
}
if [ -n "${RB_pex_hub:-}" ]; then
	rd_prep pex_hub; mkdir -p "$RR/etc" "$RR/tmp" "$RR/var/log"
	echo "net vm1" > "$RW/network.conf"
	printf '#!/bin/sh\necho "firstboot: $(cat %s/etc/network.conf)" > %s/var/log/firstboot.log\n' "$RR" "$RR" > "$RW/firstboot.sh"
	rd_bg RD_VM1 "$AGENT" --retry --reconnect "unix:$RD/s/vm1.sock"
	rd_each "$RB_pex_hub" rd_check_pex
fi

if [ -n "$rd_an_pid" ]; then
	wait "$rd_an_pid"; rc=$?
	RW=$RD/w.ansible
	if [ $rc = 0 ] && grep -q '^vm3 | SUCCESS' "$RW/out" && grep -q '"ping": "pong"' "$RW/out"; then
		t_ok "readme: Ansible: the inventory's vm3 through the collection: ping, pong"
	else
		t_fail "readme: Ansible: ansible -i inventory vm3 -m ping" "status $rc: $(tr '\n' ' ' < "$RW/out" | cut -c1-600)"
	fi
fi

# --- vsock-shell: how COMMAND's words are joined, with the README's
# placeholder commands a and b as `echo a` and `echo b`
rd_inline() { tr '\n' ' ' < "$RD_README" | grep -qF -- "$1"; }
if rd_inline "\`vsock-shell 3 -- sh -c 'a; b'\` runs \`sh -c a; b\` remotely; write \`vsock-shell 3 -- 'a; b'\`, or use \`--argv\`"; then
	rd_c3=unix:$RD/s/cid3.sock
	r="$(rd_t "$VSH" "$rd_c3" -- sh -c 'echo a; echo b' | tr '\n' ,)/$(rd_t "$VSH" "$rd_c3" -- 'echo a; echo b' | tr '\n' ,)"
	r="$r/$(rd_t "$VSH" --argv "$rd_c3" -- sh -c 'echo a; echo b' | tr '\n' ,)"
	expect_eq "readme: vsock-shell 3 -- sh -c 'a; b' runs sh -c a; b; 'a; b' and --argv run both" "$r" ",b,/a,b,/a,b,"
else
	t_fail "readme: vsock-shell 3 -- sh -c 'a; b'" "the README no longer says it as this test runs it"
fi
if rd_inline "(\`vsock-shell --listen -w 5 unix:/x -- cmd\`,"; then
	printf '%s\n' 'vsock-shell --listen -w 5 unix:/x -- cmd' > "$RD/stray"
	rd_prep stray; rd_script "$RD/stray" "$RW/b.sh" && { rd_sh "$RW/b.sh" > /dev/null 2>"$RW/err"; rc=$?; }
	expect_eq "readme: vsock-shell --listen -w 5 unix:/x -- cmd: an error in one line, not a target" \
		"$rc/$(wc -l < "$RW/err")/$(grep -c "'unix:/x' looks like an address.*(try vsock-shell --help)" "$RW/err")" "255/1/1"
else
	t_fail "readme: vsock-shell --listen -w 5 unix:/x -- cmd" "the README no longer says it as this test runs it"
fi

# --- Addresses: every row of its tables
# rd_rows SECTION: "TABLE<TAB>first cell" of each table row in SECTION
rd_rows() {
	awk -v s="## $1" '/^## / { in_s = ($0 == s) } in_s && /^\|/ {
		if (!row) t++; row = 1; c = $0; sub(/^\| */, "", c); sub(/ *\|.*/, "", c)
		if (c !~ /^-+$/ && n[t]++) print t "\t" c; next } { row = 0 }' "$RD_README"
}
rd_rows Addresses > "$RD/addr.rows"
expect_eq "readme: Addresses: the rows of its tables are those this test runs or checks" "$(tr '\t\n' ':|' < "$RD/addr.rows")" \
	'1:`vsock:CID:PORT`, `CID:PORT`|1:`CID`, `CID:`, `:PORT`|1:`unix:PATH`|1:`hybrid:PATH:PORT`|1:`@NAME`, `@CID`|2:agent, dial mode|2:agent, `--listen`|2:controller, `TARGET`|2:controller, `--listen`; the hub|'
# the vsock forms are never used here: the unit tests parse each
# (tests/test_frame.c), and --help names them
rd_tf=$RD_SRC/tests/test_frame.c
rd_has "$rd_tf" 'addr_ok("vsock:3:1024"' 'addr_ok("3:5000"' 'addr_ok("3",' 'addr_ok("-1:",' 'addr_ok(":1025"' \
	'addr_ok("any:7"' 'addr_ok("-1",' 'addr_ok("host:9"' 'addr_ok("local",' &&
	echo "$rd_vsh_help" | grep -qF 'TARGET: CID[:PORT], vsock:CID[:PORT], unix:PATH, hybrid:PATH:PORT' &&
	echo "$rd_vsh_help" | grep -qF '@NAME / @CID'
expect_eq "readme: Addresses: the vsock forms and CID names (not used here): the unit tests parse each, --help names them" "$?" 0
# the defaults, as --help tells them
echo "$rd_agent_help" | grep -q 'dial (default 2:1023)' && echo "$rd_agent_help" | grep -q -- '--listen .*(default any:1024)' &&
	echo "$rd_vsh_help" | grep -q 'port (default 1024 to connect, 1023 with --listen)' &&
	echo "$rd_vsh_help" | grep -q 'dials the host (default vsock:any:1023)' &&
	"$VSH" serve --help 2>&1 | grep -q 'default vsock:any:1023'
expect_eq "readme: Addresses: the defaults are those --help tells" "$?" 0
# unix:PATH both ways for both programs
rd_prep addr
rd_bg ap "$AGENT" --listen "unix:$RD/s/a1.sock"; rd_sock "$RD/s/a1.sock"
r=$(rd_t "$VSH" "unix:$RD/s/a1.sock" -- echo listening 2>&1)
kill "$ap"; rd_exit "$ap"
"$VSH" --listen "unix:$RD/s/a2.sock" -w 10 -- echo dialing > "$RW/out" 2>&1 & hp=$!
rd_sock "$RD/s/a2.sock"; rd_t "$AGENT" "unix:$RD/s/a2.sock" 2>>"$RD/agent.log"; arc=$?
wait "$hp"
expect_eq "readme: Addresses: unix:PATH: the agent listens and dials, the controller connects and listens" \
	"$r/$(cat "$RW/out")/$arc/$(test -e "$RD/s/a1.sock" || echo removed)" "listening/dialing/0/removed"
# A Unix listener replaces only a stale socket; a live one is "address in
# use", anything else "not a socket; not replacing it", with the path
"$TPEER" -l "unix:$RD/s/stale.sock" sleep:10000 > /dev/null 2>&1 & tp=$!
rd_sock "$RD/s/stale.sock"; kill -9 "$tp"; wait "$tp" 2>/dev/null
touch "$RD/s/file"
rd_bg ap "$AGENT" --listen "unix:$RD/s/stale.sock"; rd_sock "$RD/s/stale.sock"
r=$(rd_t "$VSH" -w 5 "unix:$RD/s/stale.sock" -- echo replaced 2>&1)
for p in stale.sock file; do
	rd_t "$AGENT" --listen "unix:$RD/s/$p" 2>&1; echo "rc $?"
	rd_t "$VSH" --listen "unix:$RD/s/$p" -- true 2>&1; echo "rc $?"
	rd_t "$VSH" serve --vsock off --hub "$RD/s/h2.sock" --unix "x=$RD/s/$p" 2>&1; echo "rc $?"
done > "$RW/listeners" 2>&1
kill "$ap"; rd_exit "$ap"
expect_eq "readme: Addresses: a stale socket is replaced; a live one is in use, a file not a socket, for the agent, the controller and the hub" \
	"$r/$(grep -c "unable to listen on unix:$RD/s/stale.sock: address in use" "$RW/listeners")/$(grep -c "unable to listen on unix:$RD/s/file: not a socket; not replacing it" "$RW/listeners")/$(grep '^rc' "$RW/listeners" | tr '\n' ' ')" \
	"replaced/3/3/rc 1 rc 255 rc 255 rc 1 rc 255 rc 255 "

# --- Exit status: every row of its two tables, over unix:
rd_rows 'Exit status' > "$RD/exit.rows"
expect_eq "readme: Exit status: the rows of its tables are those this test runs" "$(tr '\t\n' ':|' < "$RD/exit.rows")" \
	'1:the remote status|1:128 + N|1:124|1:141|1:255|1:1|1:0|1:0, 3, 4, 5|2:0|2:1|2:2|2:3|2:the command'"'"'s|'
rd_prep exit
A3=unix:$RD/s/cid3.sock
rd_rc() { timeout 10 "$@" > /dev/null 2>&1; printf '%s ' "$?"; }
r="$(rd_rc "$VSH" "$A3" -- 'exit 3')$(rd_rc "$VSH" "$A3" -- no-such-command)$(rd_rc "$VSH" --argv "$A3" -- /etc/passwd)$(rd_rc "$VSH" --cwd /no/such/dir "$A3" -- true)"
expect_eq "readme: exit status: the remote status; 127 not found, 126 not started or a bad --cwd" "$r" "3 127 126 126 "
mkfifo "$RW/fifo"; exec 7<>"$RW/fifo"
"$VSH" cp -q "$A3" - ":$RD/r.exit/x" < "$RW/fifo" 2>/dev/null & cp_p=$!
sleep 0.3; kill -TERM "$cp_p"; rd_exit "$cp_p"; exec 7>&-
expect_eq "readme: exit status: 128 + N: a command killed by SIGKILL; cp interrupted by SIGTERM" "$(rd_rc "$VSH" "$A3" -- 'kill -9 $$')$RD_RC" "137 143"
expect_eq "readme: exit status: 124, --timeout ran out" "$(rd_rc "$VSH" --timeout 1 "$A3" -- 'sleep 10')" "124 "
{ rd_t "$VSH" "$A3" -- yes; echo $? > "$RW/rc141"; } | head -n 1 > /dev/null
expect_eq "readme: exit status: 141, our stdout closed early" "$(cat "$RW/rc141")" 141
expect_eq "readme: exit status: 255, no connection, a usage error, an ERROR from the hub" \
	"$(rd_rc "$VSH" "unix:$RD/s/nowhere.sock" -- true)$(rd_rc "$VSH" --no-such-option "$A3" -- true)$(rd_rc "$VSH" --hub "$RD_HUB" @nosuch -- true)" "255 255 255 "
expect_eq "readme: exit status: 1, a failed transfer, wait out of time, release of a guest not connected" \
	"$(rd_rc "$VSH" cp -q "$A3" :/no/such/file "$RW/x")$(rd_rc env VSOCK_SHELL_HUB=$RD_HUB "$VSH" wait @g0 -w 1)$(rd_rc env VSOCK_SHELL_HUB=$RD_HUB "$VSH" release @g0)" "1 1 1 "
expect_eq "readme: exit status: 0 for --legacy, whatever the command did" "$(rd_rc "$VSH" --legacy "$A3" -- 'exit 5')" "0 "
VSOCK_SHELL_HUB=$RD_HUB "$VSH" wait @web1 @web2 -w 10
"$VSH" --hub "$RD_HUB" @web1,@web2 -- 'sleep 10' > /dev/null 2>&1 & fp=$!
sleep 0.5; kill -TERM "$fp"; rd_exit "$fp"
expect_eq "readme: exit status: many guests: 0 all ran, 5 a command failed, 4 a guest not reached, 3 interrupted" \
	"$(rd_rc "$VSH" --hub "$RD_HUB" @web1,@web2 -- true)$(rd_rc "$VSH" --hub "$RD_HUB" @web1,@web2 -- 'exit 1')$(rd_rc "$VSH" --hub "$RD_HUB" @web1,@nosuch -- true)$RD_RC" \
	"0 5 4 3"
# rd_dial CONTROLLER-ARGS... -- : a controller on a fresh Unix listener,
# an agent dialing it once; RD_RC the agent's status, rd_hrc the host's
rd_dial_n=0
rd_dial() {
	rd_dial_n=$((rd_dial_n + 1)); rd_d=$RD/s/d$rd_dial_n.sock
	"$VSH" --listen "unix:$rd_d" -w 10 "$@" > /dev/null 2>&1 & rd_hp=$!
	rd_sock "$rd_d"
	rd_t "$AGENT" "unix:$rd_d" 2>>"$RD/agent.log"; RD_RC=$?
	wait "$rd_hp"; rd_hrc=$?
}
r=""
rd_dial -- true; r="$r$RD_RC "
r="$r$(rd_rc "$AGENT" "unix:$RD/s/nowhere.sock")$(rd_rc "$AGENT" --listen "unix:$RD/no/such/dir/a.sock")"
r="$r$(rd_rc "$AGENT" --no-such-option)$(rd_rc "$AGENT" foo:bar)$(rd_rc "$AGENT" --listen "unix:$RD/s/x.sock" --retry)$(rd_rc "$AGENT" -d "unix:$RD/s/x.sock")"
rd_dial -- false; r="$r$RD_RC/$rd_hrc "
rd_dial --legacy -- 'exit 6'; r="$r$RD_RC/$rd_hrc"
expect_eq "readme: exit status of the agent: 0 released; 1 no connection or listener; 2 usage; 3 not released; a legacy command's" \
	"$r" "0 1 1 2 2 2 2 3/1 6/0"

kill "$RD_HP" "$RD_W1" "$RD_W2" "$RD_C3" "$RD_C4" ${RD_C5:-} 2>/dev/null
fi
