# xfer: file transfer, upload and download (sourced by suite.sh)

# Without --preserve a receiver applies its umask, as cp(1) does: the
# modes below assume 022, whatever the runner's (the agents started here
# inherit it too).
umask 022

le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
le64() { echo "$(le32 $(($1 & 0xffffffff)))$(le32 $((($1 >> 32) & 0xffffffff)))"; }
hdr() { echo "$(le32 "$2")$(le16 "$1")0000"; }
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
# STAT frame: KIND MODE(decimal) SIZE PATH [LINK [MTIME [UID]]]
stat_frame() {
	sf_p="$(le32 "$1")$(le32 "$2")$(le64 "$3")$(le64 "${6:-0}")$(le32 0)$(le32 "${7:-0}")$(le32 "${7:-0}")$(tohex "$4")00$(tohex "${5:-}")00"
	echo "$(hdr 34 $((${#sf_p} / 2)))$sf_p"
}
data_frame() { echo "$(hdr 35 $((${#1} / 2)))$1"; }        # HEX payload
hole_frame() { echo "$(hdr 36 8)$(le64 "$1")"; }            # LENGTH
end_frame() { echo "$(hdr 37 24)$(le32 1)$(le32 0)$(le64 "$1")$2"; } # LENGTH XXH64-HEX
DONE_FRAME="$(hdr 39 4)$(le32 0)"
no_temp() { ! ls -a "$1" 2>/dev/null | grep -q '\.vsh-'; }
no_temp_tree() { [ -z "$(find "$1" -name '.*.vsh-*' 2>/dev/null)" ]; }
same() { cmp -s "$1" "$2"; }
nothing_in() { [ -z "$(find "$1" -mindepth 1 2>/dev/null)" ]; }
# A receiver (PID...) holding its temporary file open: unnamed (O_TMPFILE,
# "(deleted)" in /proc) or named.
receiving() {
	for rp in "$@"; do
		for rf in /proc/"$rp"/fd/*; do
			case $(readlink "$rf" 2>/dev/null) in *'(deleted)'* | *.vsh-*) return 0 ;; esac
		done
	done
	return 1
}
agent_receiving() { CHILD_PARENT=$APID; receiving $(children_of); }
# "path mode [size] [mtime]" for every entry ("path -> target" for links)
tree_list() {
	(cd "$1" && find . | sort | while read -r f; do
		if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"
		elif [ -d "$f" ]; then echo "$f $(stat -c "%a${2:+ %Y}" "$f")"
		else echo "$f $(stat -c "%a %s${2:+ %Y}" "$f")"; fi
	done)
}
ino() { stat -c %i "$1"; }
# expect_err NAME RC WANT: the last command's status ($rc) and $TMP/err
expect_err() {
	case "$rc:$(cat "$TMP/err")" in "$2":*"$3"*) t_ok "xfer: $1" ;; *) t_fail "xfer: $1" "$rc $(cat "$TMP/err")" ;; esac
}

agent_listen
X=$ADDR
R=$TMP/xr L=$TMP/xl
rm -rf "$R" "$L"; mkdir -p "$R" "$L"

for n in 0 1 65535 65536 65537 5000000; do
	"$TGEN" $n $n > "$L/f$n"
	"$VSH" cp -q "$X" "$L/f$n" ":$R/f$n"; rc=$?
	if [ $rc = 0 ] && same "$L/f$n" "$R/f$n"; then t_ok "xfer: upload $n bytes"; else t_fail "xfer: upload $n bytes" "rc=$rc"; fi
	rm -f "$L/g$n"
	"$VSH" cp -q "$X" ":$R/f$n" "$L/g$n"; rc=$?
	if [ $rc = 0 ] && same "$L/f$n" "$L/g$n"; then t_ok "xfer: download $n bytes"; else t_fail "xfer: download $n bytes" "rc=$rc"; fi
done

# the seed client's flags, repeatable, then a command
rm -f "$R/u1" "$R/u2" "$L/d1"
r=$("$VSH" -q "$X" -u "$L/f1:$R/u1" -u "$L/f65536:$R/u2" -d "$R/f65535:$L/d1" -- "cat $R/u1 | wc -c")
if [ "$(echo $r)" = 1 ] && same "$L/f65536" "$R/u2" && same "$L/f65535" "$L/d1"; then t_ok "xfer: -u/-d pairs, then the command"; else t_fail "xfer: -u/-d pairs, then the command" "$r"; fi

# mode travels always (as cp(1) gives it: less the umask, no setuid,
# setgid or sticky bit); mtime with -p, also spelled --preserve
"$TGEN" 100 1 > "$L/m"; chmod 751 "$L/m"; touch -d '2001-02-03 04:05:06' "$L/m"
rm -f "$R/m"; "$VSH" cp -q "$X" "$L/m" ":$R/m"
expect_eq "xfer: mode kept without -p" "$(stat -c %a "$R/m")" 751
"$VSH" cp -q --preserve "$X" "$L/m" ":$R/mp"
expect_eq "xfer: mtime kept with -p" "$(stat -c %Y "$R/mp")" "$(stat -c %Y "$L/m")"
"$VSH" cp -q --preserve "$X" "$L/m" ":$R/mpp" 2>"$TMP/err"
expect_eq "xfer: cp --preserve keeps the mtime" "$(stat -c %Y "$R/mpp" 2>/dev/null) $(cat "$TMP/err")" "$(stat -c %Y "$L/m") "
# the agent receives by the same rule as the host (PROTOCOL.md 7.4)
"$TGEN" 100 2 > "$L/ms"; chmod 6755 "$L/ms"
rm -f "$R/ms" "$R/msp" "$R/m666"
"$VSH" cp -q "$X" "$L/ms" ":$R/ms"; "$VSH" cp -q --preserve "$X" "$L/ms" ":$R/msp"
expect_eq "xfer: upload of a 6755 file: 755 without -p (no setuid, setgid), 6755 with it" \
	"$(stat -c %a "$R/ms") $(stat -c %a "$R/msp")" "755 6755"
chmod 666 "$L/ms"; "$VSH" cp -q "$X" "$L/ms" ":$R/m666"
expect_eq "xfer: upload of a 666 file: the agent's umask (022) applies" "$(stat -c %a "$R/m666")" 644
echo old > "$R/mold"; chmod 600 "$R/mold"
"$VSH" cp -q "$X" "$L/ms" ":$R/mold"
expect_eq "xfer: upload over a 600 file: it keeps its mode, as cp leaves it" "$(stat -c %a "$R/mold") $(cmp "$L/ms" "$R/mold" && echo same)" "600 same"
rm -rf "$L/ukeys" "$R/ukeys"; mkdir "$L/ukeys" "$R/ukeys"; chmod 777 "$L/ukeys"; chmod 700 "$R/ukeys"; echo k > "$L/ukeys/k"
"$VSH" cp -q -r "$X" "$L/ukeys" ":$R/"; rc=$?
expect_eq "xfer: upload -r into an existing 700 directory: it keeps its mode" "$rc $(stat -c %a "$R/ukeys") $(cat "$R/ukeys/k")" "0 700 k"
"$VSH" cp -q -r --preserve "$X" "$L/ukeys" ":$R/"; rc=$?
expect_eq "xfer: ...with --preserve it takes the mode sent" "$rc $(stat -c %a "$R/ukeys")" "0 777"
rm -rf "$L/ukeys" "$R/ukeys" "$L/ms" "$R/ms" "$R/msp" "$R/m666" "$R/mold"

# a tree: modes, symlinks (inside, dangling, absolute, climbing out: all
# created as they are, both ways), empty dirs; -r -p
T=$L/tree
mkdir -p "$T/a/b" "$T/empty" "$T/ro"
"$TGEN" 3000 3 > "$T/a/b/data"; echo x > "$T/a/x"; : > "$T/a/b/zero"
ln -s b/data "$T/a/lnk"; ln -s /etc/hostname "$T/abs"; ln -s nowhere "$T/dangling"; ln -s ../../outside "$T/a/up"
chmod 700 "$T/a/b"; chmod 640 "$T/a/x"; chmod 555 "$T/ro"
touch -d '2010-01-01' "$T/a/b/data" "$T/a/x"
"$VSH" cp -q -r --preserve "$X" "$T" ":$R/"; rc=$?
expect_eq "xfer: upload a tree (-r -p)" "$rc" 0
expect_eq "xfer: uploaded tree identical (modes, links, sizes, mtimes)" "$(tree_list "$R/tree" t)" "$(tree_list "$T" t)"
rm -rf "$L/tree2"
"$VSH" cp -q -r --preserve "$X" ":$R/tree" "$L/tree2" 2>"$TMP/err"; rc=$?
expect_eq "xfer: download a tree holding absolute and escaping symlinks (-r -p)" "$rc $(cat "$TMP/err")" "0 "
expect_eq "xfer: downloaded tree identical, symlinks verbatim" "$(tree_list "$L/tree2" t)" "$(tree_list "$T" t)"
"$VSH" cp -q "$X" ":$R/tree" "$L/t3" 2>"$TMP/err"; rc=$?
expect_err "a directory without -r: clear error" 1 "Is a directory (use -r)"

# --safe-links: the receiver skips links that are absolute or climb out
safe_check() { # NAME DIR
	if [ $rc = 0 ] && grep -q "skipped 2 symlinks that point outside the tree (--safe-links)" "$TMP/err" &&
		[ ! -L "$2/abs" ] && [ ! -L "$2/a/up" ] && [ -L "$2/a/lnk" ] && [ -L "$2/dangling" ] && same "$T/a/x" "$2/a/x"; then
		t_ok "xfer: $1"
	else
		t_fail "xfer: $1" "$rc $(cat "$TMP/err") $(ls -a "$2" 2>&1 | tr '\n' ' ')"
	fi
}
rm -rf "$L/tsafe"
"$VSH" cp -q -r --safe-links "$X" ":$R/tree" "$L/tsafe" 2>"$TMP/err"; rc=$?
safe_check "download --safe-links: 2 links skipped and counted, the others kept" "$L/tsafe"
rm -rf "$R/tsafe"
"$VSH" cp -q -r --safe-links "$X" "$T" ":$R/tsafe" 2>"$TMP/err"; rc=$?
safe_check "upload --safe-links: the agent skips them, the host reports the count" "$R/tsafe"

# hard links stay hard links (as tar keeps them), both ways
H=$L/hl
rm -rf "$H" "$R/hl" "$L/hl2"; mkdir -p "$H/a" "$H/b"
"$TGEN" 5000 7 > "$H/a/f"; ln "$H/a/f" "$H/b/g"; ln "$H/a/f" "$H/c"; echo solo > "$H/b/solo"
"$VSH" cp -q -r "$X" "$H" ":$R/"; rc=$?
i=$(ino "$R/hl/a/f" 2>/dev/null)
if [ $rc = 0 ] && [ "$(ino "$R/hl/b/g")" = "$i" ] && [ "$(ino "$R/hl/c")" = "$i" ] && [ "$(ino "$R/hl/b/solo")" != "$i" ] &&
	same "$H/a/f" "$R/hl/c"; then t_ok "xfer: upload keeps hard links (one inode, three names)"
else t_fail "xfer: upload keeps hard links" "rc=$rc $(ls -li "$R/hl" "$R/hl/a" "$R/hl/b" 2>&1 | tr '\n' ' ')"; fi
"$VSH" cp -q -r "$X" ":$R/hl" "$L/hl2"; rc=$?
i=$(ino "$L/hl2/a/f" 2>/dev/null)
if [ $rc = 0 ] && [ "$(ino "$L/hl2/b/g")" = "$i" ] && [ "$(ino "$L/hl2/c")" = "$i" ] && [ "$(stat -c %h "$L/hl2/c")" = 3 ] &&
	same "$H/a/f" "$L/hl2/b/g"; then t_ok "xfer: download keeps hard links"
else t_fail "xfer: download keeps hard links" "rc=$rc"; fi

# special files inside a tree: skipped, and said so, both ways
rm -rf "$L/sp1" "$R/sp1" "$R/sp3" "$L/sp3"; mkdir -p "$L/sp1" "$R/sp3"
echo a > "$L/sp1/f"; mkfifo "$L/sp1/p1"
"$VSH" cp -q -r "$X" "$L/sp1" ":$R/" 2>"$TMP/err"; rc=$?
expect_eq "xfer: upload: one FIFO skipped, said so" "$rc $(cat "$TMP/err")" "0 vsock-shell: skipped 1 special file (a device, socket or FIFO)"
echo a > "$R/sp3/f"; mkfifo "$R/sp3/p1" "$R/sp3/p2" "$R/sp3/p3"
"$VSH" cp -q -r "$X" ":$R/sp3" "$L/" 2>"$TMP/err"; rc=$?
expect_eq "xfer: download: three FIFOs skipped, said so (count from DONE)" "$rc $(cat "$TMP/err")" "0 vsock-shell: skipped 3 special files (devices, sockets, FIFOs)"

# streaming: stdin to a remote file, a remote file to stdout
"$TGEN" 1000000 21 | "$VSH" cp -q "$X" - ":$R/fromstdin"
expect_eq "xfer: stdin streamed to a remote file" "$("$TGEN" -c 1000000 21 < "$R/fromstdin")" "ok 1000000"
r=$("$VSH" cp -q "$X" ":$R/fromstdin" - | "$TGEN" -c 1000000 21)
expect_eq "xfer: remote file streamed to stdout" "$r" "ok 1000000"
# stdout is not ours: written in sequence, never seeked or truncated (a
# sparse source: its hole goes as zeros)
printf head > "$R/sp.src"; printf tail | dd of="$R/sp.src" bs=1 seek=1048576 conv=notrunc 2>/dev/null
{ echo before; cat "$R/sp.src"; } > "$TMP/want"
echo before > "$L/app"
"$VSH" cp -q "$X" ":$R/sp.src" - >> "$L/app"; rc=$?
if [ $rc = 0 ] && same "$L/app" "$TMP/want"; then t_ok "xfer: to stdout appending (>>): nothing lost"; else t_fail "xfer: to stdout appending" "rc=$rc $(stat -c %s "$L/app")"; fi
{ echo a; cat "$R/sp.src"; echo z; } > "$TMP/want"
(echo a; "$VSH" cp -q "$X" ":$R/sp.src" -; echo z) > "$L/grp"; rc=$?
if same "$L/grp" "$TMP/want"; then t_ok "xfer: to stdout in a ( ... ) > f group: in order, no NULs"; else t_fail "xfer: to stdout in a group" "$(stat -c %s "$L/grp")"; fi

# files whose stat lies about their size (procfs says 0, sysfs 4096):
# read to their end, both ways, as cp reads them
r=$("$VSH" cp -q "$X" :/proc/version - 2>&1); rc=$?
expect_eq "xfer: a /proc file (size 0 in its stat) downloads whole" "$rc/$r" "0/$(cat /proc/version)"
"$VSH" cp -q "$X" /proc/version ":$R/version" 2>"$TMP/err"; rc=$?
expect_eq "xfer: ...and uploads whole" "$rc/$(cat "$R/version" 2>&1)" "0/$(cat /proc/version)"
SYSF=/sys/devices/system/cpu/online
if [ -r "$SYSF" ] && [ "$(stat -c %s "$SYSF")" != "$(wc -c < "$SYSF")" ]; then
	r=$("$VSH" cp -q "$X" ":$SYSF" - 2>&1); rc=$?
	expect_eq "xfer: a sysfs file (size 4096 in its stat) downloads whole" "$rc/$r" "0/$(cat "$SYSF")"
else
	t_skip "xfer: a sysfs file downloads whole" "no $SYSF whose stat lies"
fi

# exact errors, exit status 1
xerr() { # NAME WANT-TEXT CP-ARGS...
	xe_n=$1 xe_w=$2; shift 2
	"$VSH" cp -q "$X" "$@" 2>"$TMP/err"; rc=$?
	expect_err "$xe_n" 1 "$xe_w"
}
xerr "no such remote file" "No such file or directory" ":$R/nonexistent" "$L/x"
xerr "no such local file" "No such file or directory" "$L/nonexistent" ":$R/x"
xerr "upload into a missing directory" "No such file or directory" "$L/f1" ":$R/no/such/dir/f"
"$VSH" cp -q --mkdir "$X" "$L/f1" ":$R/made/by/mkdir/f"; rc=$?
if [ $rc = 0 ] && same "$L/f1" "$R/made/by/mkdir/f"; then t_ok "xfer: --mkdir creates the parents"; else t_fail "xfer: --mkdir" "rc=$rc"; fi
xerr "--mkdir that cannot: the path, then ': ', then why" "unable to create /proc/vsh-nope/sub: " --mkdir "$L/f1" ":/proc/vsh-nope/sub/f"
mkdir -p "$R/isdir/f1"
xerr "target is a directory" "Is a directory" "$L/f1" ":$R/isdir/"
long=$(printf '%0300d' 0)
xerr "remote path too long" "too long" "$L/f1" ":$R/$long"
xerr "local path too long" "too long" ":$R/f1" "$L/$long"
"$VSH" cp -q "$X" "$L/f1" "$L/x" 2>"$TMP/err"; rc=$?
expect_err "no remote path at all (forgotten colon): says nothing is remote" 255 "nothing is remote"
"$VSH" cp "$X" "$L/f1" 2>"$TMP/err"; rc=$?
expect_eq "xfer: no destination: says what is missing in one line, then try --help" "$rc|$(cat "$TMP/err" | tr '\n' '|')" \
	"255|vsock-shell: missing the destination after '$L/f1' (try vsock-shell cp --help)|"

# the destination the operator named is theirs: an existing symlink there
# is written through, as cp(1) does; a dangling one is refused
wt_check() { # NAME DIR
	if [ $rc = 0 ] && [ -L "$2/wt" ] && same "$L/f65535" "$2/real"; then t_ok "xfer: $1"; else t_fail "xfer: $1" "rc=$rc $(ls -l "$2/wt")"; fi
}
echo old > "$L/real"; rm -f "$L/wt"; ln -s real "$L/wt"
"$VSH" cp -q "$X" ":$R/f65535" "$L/wt"; rc=$?
wt_check "download onto an operator-named symlink writes through it" "$L"
echo old > "$R/real"; rm -f "$R/wt"; ln -s real "$R/wt"
"$VSH" cp -q "$X" "$L/f65535" ":$R/wt"; rc=$?
wt_check "upload onto an operator-named symlink writes through it" "$R"
rm -f "$L/dang" "$L/nowhere-x"; ln -s nowhere-x "$L/dang"
"$VSH" cp -q "$X" ":$R/f1" "$L/dang" 2>"$TMP/err"; rc=$?
if [ -L "$L/dang" ] && [ ! -e "$L/nowhere-x" ]; then expect_err "a dangling symlink as destination is refused" 1 "not writing through a dangling symlink"
else t_fail "xfer: a dangling symlink as destination" "$(ls -l "$L/dang")"; fi

# permission denied: an agent running as nobody writing into root's dir;
# the error names the destination path
if [ "$(id -u)" = 0 ]; then
	new_addr
	if [ "$VS_TRANSPORT" = unix ]; then
		# somewhere nobody can reach, whatever the mode of $TMP's parents
		pub=$(mktemp -d /tmp/vs-nobody.XXXXXX); chmod 1777 "$pub"
		LADDR=unix:$pub/nobody.sock CADDR=$LADDR
	fi
	mkdir -p "$R/locked"; chmod 755 "$R/locked"; chmod 711 "$R" "$TMP"
	"$TGEN" -u 65534 "$PUB_AGENT" --listen "$LADDR" ${VS_TRANSPORT:+$( [ "$VS_TRANSPORT" = vsock ] && echo --allow 1)} 2>>"$TMP/agent.log" &
	np=$!
	wait_for 5 addr_ready "$LADDR"
	"$VSH" cp -q "$CADDR" "$L/f1" ":$R/locked/" 2>"$TMP/err"; rc=$?
	expect_err "permission denied, naming the remote path" 1 "remote: $R/locked/f1: Permission denied"
	kill "$np"; wait "$np" 2>/dev/null
	[ -n "${pub:-}" ] && rm -rf "$pub"
	chmod 755 "$R"
else
	t_skip "xfer: permission denied" "needs root to drop to nobody"
fi

# a file that grows while it is read: clear error, target untouched
"$TGEN" 20000000 5 > "$L/grow"; echo old > "$R/grow"
"$TGEN" -g "$L/grow" 3 &
gp=$!
sleep 0.2
"$VSH" cp -q "$X" "$L/grow" ":$R/grow" 2>"$TMP/err"; rc=$?
kill "$gp" 2>/dev/null; wait "$gp" 2>/dev/null
expect_err "file changed while read: clear error" 1 "changed while being read"
expect_eq "xfer: ...old target intact, no temporary file" "$(cat "$R/grow")$(no_temp "$R" && echo clean)" "oldclean"
rm -f "$L/grow"

# A stream that stalls after 3 MB, through a FIFO we can stop: stall FIFO
stall() { # FIFO BYTES SEED
	rm -f "$1"; mkfifo "$1"
	("$TGEN" "$2" "$3"; exec sleep 30) > "$1" &
	wp=$!
}

# interrupted upload: the controller dies mid-stream
echo old > "$R/intr"
stall "$TMP/in" 3000000 8
"$VSH" cp -q "$X" - ":$R/intr" < "$TMP/in" &
cp_pid=$!
wait_for 10 agent_receiving
sleep 0.3
kill -9 "$cp_pid" 2>/dev/null; wait "$cp_pid" 2>/dev/null
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
wait_for 5 no_temp "$R"
expect_eq "xfer: interrupted upload: old target intact, no temporary file" "$(cat "$R/intr")$(no_temp "$R" && echo clean)" "oldclean"

# the agent's receiver killed by SIGKILL mid-file: not even that leaves a
# temporary file (O_TMPFILE)
stall "$TMP/in" 3000000 8
"$VSH" cp -q "$X" - ":$R/intr" < "$TMP/in" 2>/dev/null &
cp_pid=$!
if wait_for 10 agent_receiving; then
	CHILD_PARENT=$APID
	kill -9 $(children_of) 2>/dev/null
	# the host notices at once, though its stdin is idle
	wait_for 5 gone "$cp_pid" || echo "host did not notice" > "$R/intr"
	wait "$cp_pid"; rc=$?
	expect_eq "xfer: the agent's receiver SIGKILLed mid-file: old target intact, no temporary file, the host notices" \
		"$rc $(cat "$R/intr")$(no_temp "$R" && echo clean)" "255 oldclean"
else
	t_fail "xfer: the agent's receiver SIGKILLed mid-file" "never saw it receiving"
	kill "$cp_pid" 2>/dev/null; wait "$cp_pid" 2>/dev/null
fi
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null

# interrupted download: the agent's session dies mid-stream
echo old > "$L/intr"
stall "$R/fifo" 2000000 9
"$VSH" cp -q "$X" ":$R/fifo" "$L/intr" 2>"$TMP/err" &
cp_pid=$!
wait_for 10 receiving "$cp_pid"
sleep 0.3
CHILD_PARENT=$APID
kill -9 $(children_of) 2>/dev/null
wait "$cp_pid"; rc=$?
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
expect_eq "xfer: interrupted download exits 255 (connection lost)" "$rc" 255
expect_eq "xfer: interrupted download: old file intact, no temporary file" "$(cat "$L/intr")$(no_temp "$L" && echo clean)" "oldclean"

# the host's receiver killed by SIGKILL mid-file: no temporary file either
stall "$R/fifo" 2000000 9
"$VSH" cp -q "$X" ":$R/fifo" "$L/intr" 2>/dev/null &
cp_pid=$!
wait_for 10 receiving "$cp_pid"
kill -9 "$cp_pid"; wait "$cp_pid" 2>/dev/null
# ...and the agent's sender, waiting on an idle FIFO, sees the host go
no_agent_session() { CHILD_PARENT=$APID; [ -z "$(children_of)" ]; }
wait_for 5 no_agent_session; gone_rc=$?
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
expect_eq "xfer: the host's receiver SIGKILLed mid-file: old file intact, no temporary file" \
	"$(cat "$L/intr")$(no_temp "$L" && echo clean)" "oldclean"
expect_eq "xfer: ...and the agent's session, its FIFO idle, ends at once" "$gone_rc" 0
# where O_TMPFILE cannot be used the temporary file has a name, with the
# receiver's pid: the next transfer to that name removes a dead one's
stall "$R/fifo" 2000000 9
VSOCK_SHELL_NO_TMPFILE=1 "$VSH" cp -q "$X" ":$R/fifo" "$L/intr" 2>/dev/null &
cp_pid=$!
wait_for 10 receiving "$cp_pid"
kill -9 "$cp_pid"; wait "$cp_pid" 2>/dev/null
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
if no_temp "$L"; then
	t_fail "xfer: fallback temporary file of a dead receiver removed" "none was left: the test cannot tell"
else
	VSOCK_SHELL_NO_TMPFILE=1 "$VSH" cp -q "$X" ":$R/f65535" "$L/intr"; rc=$?
	if [ $rc = 0 ] && same "$L/f65535" "$L/intr" && no_temp "$L"; then t_ok "xfer: fallback: a dead receiver's named temporary file is removed by the next one"
	else t_fail "xfer: fallback temporary file of a dead receiver removed" "rc=$rc $(ls -a "$L" | grep vsh- | tr '\n' ' ')"; fi
fi

# cp interrupted: cleanup, then 128+N; on a terminal the bar's line ended
sig_check() { # SIG STATUS [env...]
	sg=$1 st=$2; shift 2
	echo old > "$L/intr"
	stall "$R/fifo" 2000000 9
	env "$@" "$VSH" cp -q "$X" ":$R/fifo" "$L/intr" 2>/dev/null &
	cp_pid=$!
	wait_for 10 receiving "$cp_pid"
	kill -"$sg" "$cp_pid"; wait "$cp_pid"; rc=$?
	kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
	expect_eq "xfer: SIG$sg mid-download${1:+ (named temporary)}: exit $st, old file intact, no temporary file" \
		"$rc $(cat "$L/intr")$(no_temp "$L" && echo clean)" "$st oldclean"
}
sig_check TERM 143 VSOCK_SHELL_NO_TMPFILE=1
sig_check HUP 129
stall "$R/fifo" 2000000 9
printf 'expect B/s\nsignal INT\nwait 130\n' > "$TMP/int.tpty"
rm -f "$TMP/int.out"
if "$TPTY" -T 20 -t 10 -o "$TMP/int.out" "$TMP/int.tpty" -- "$VSH" cp "$X" ":$R/fifo" "$L/intr" 2>"$TMP/err" &&
	[ "$(tail -c 1 "$TMP/int.out" | od -An -c | tr -d ' ')" = '\n' ]; then
	t_ok "xfer: SIGINT on a terminal: the bar's line ended, exit 130"
else
	t_fail "xfer: SIGINT on a terminal" "$(tail -c 300 "$TMP/err"; tail -c 40 "$TMP/int.out" | od -c | tail -3)"
fi
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
rm -f "$R/fifo" "$TMP/in"

# ENOSPC in the receiver (the guest: a small tmpfs)
if [ -e /etc/vsock-test-guest ] && mkdir -p "$TMP/small" && mount -t tmpfs -o size=1m tmpfs "$TMP/small" 2>/dev/null; then
	echo old > "$TMP/small/f"
	"$VSH" cp -q "$X" "$L/f5000000" ":$TMP/small/f" 2>"$TMP/err"; rc=$?
	expect_err "ENOSPC on the remote side: clear error" 1 "No space left on device"
	expect_eq "xfer: ...old file intact, no temporary file" "$(cat "$TMP/small/f")$(no_temp "$TMP/small" && echo clean)" "oldclean"
	"$VSH" cp -q "$X" ":$L/f5000000" "$TMP/small/f" 2>"$TMP/err"; rc=$?
	expect_err "ENOSPC on the local side: clear error" 1 "No space left on device"
	expect_eq "xfer: ...old file intact, no temporary file" "$(cat "$TMP/small/f")$(no_temp "$TMP/small" && echo clean)" "oldclean"
	umount "$TMP/small"
else
	t_skip "xfer: ENOSPC" "runs in the test VM (small tmpfs)"
fi

# sparse and over 4 GiB: holes travel as holes and hash as their length,
# so nothing reads or hashes the 5 GiB of zeros (in the VM too; there
# the data regions are compared instead of cmp reading 10 GiB)
sparse_same() { # A B
	if [ "$VS_TRANSPORT" = unix ]; then same "$1" "$2"; return; fi
	for ss in 0:4 3000000000:6 5368709116:4; do
		[ "$(dd if="$1" bs=1 skip=${ss%:*} count=${ss#*:} 2>/dev/null)" = "$(dd if="$2" bs=1 skip=${ss%:*} count=${ss#*:} 2>/dev/null)" ] || return 1
	done
}
if command -v truncate >/dev/null; then
	rm -f "$L/sparse" "$R/sparse"
	truncate -s 5G "$L/sparse"
	printf 'head' | dd of="$L/sparse" conv=notrunc 2>/dev/null
	printf 'middle' | dd of="$L/sparse" bs=1 seek=3000000000 conv=notrunc 2>/dev/null
	printf 'tail' | dd of="$L/sparse" bs=1 seek=$((5 * 1024 * 1024 * 1024 - 4)) conv=notrunc 2>/dev/null
	"$VSH" cp -q "$X" "$L/sparse" ":$R/sparse"; rc=$?
	if [ $rc = 0 ] && [ "$(stat -c %s "$R/sparse")" = 5368709120 ] && sparse_same "$L/sparse" "$R/sparse"; then t_ok "xfer: 5 GiB sparse file, byte-exact"; else t_fail "xfer: 5 GiB sparse file" "rc=$rc"; fi
	blocks=$(stat -c %b "$R/sparse")
	if [ "$blocks" -lt 1000 ]; then t_ok "xfer: holes kept ($blocks blocks)"; else t_fail "xfer: holes kept" "$blocks blocks"; fi
	rm -f "$L/sparse2"
	"$VSH" cp -q "$X" ":$R/sparse" "$L/sparse2"; rc=$?
	if [ $rc = 0 ] && sparse_same "$L/sparse" "$L/sparse2" && [ "$(stat -c %b "$L/sparse2")" -lt 1000 ]; then t_ok "xfer: 5 GiB sparse download, holes kept"; else t_fail "xfer: sparse download" "rc=$rc"; fi
	rm -f "$L/sparse" "$R/sparse" "$L/sparse2"
else
	t_skip "xfer: 5 GiB sparse file" "no truncate"
fi

# progress on a terminal (stderr is the pty here), none with -q
printf 'expect 100%%\nexpect iB/s\nwait 0\n' > "$TMP/prog.tpty"
if "$TPTY" -T 20 -t 10 "$TMP/prog.tpty" -- "$VSH" cp "$X" "$L/f5000000" ":$R/prog" 2>"$TMP/err"; then
	t_ok "xfer: progress bar with percentage and rate on a terminal"
else
	t_fail "xfer: progress bar on a terminal" "$(tail -c 300 "$TMP/err")"
fi
printf 'expect vsh-done\nwait 0\n' > "$TMP/prog.tpty"
"$TPTY" -T 20 -t 10 -o "$TMP/prog.out" "$TMP/prog.tpty" -- sh -c "\"$VSH\" cp -q \"$X\" \"$L/f5000000\" \":$R/prog\"; echo vsh-done" 2>/dev/null
if grep -q '%' "$TMP/prog.out"; then t_fail "xfer: -q: no progress bar" "$(cat "$TMP/prog.out")"; else t_ok "xfer: -q: no progress bar"; fi
"$VSH" cp "$X" "$L/f5000000" ":$R/prog" 2>"$TMP/err"
expect_eq "xfer: no progress bar when stderr is not a terminal" "$(cat "$TMP/err")" ""

# SHA-256 as the end-to-end hash
"$VSH" cp -q --sha256 "$X" "$L/f5000000" ":$R/sha"; rc=$?
if [ $rc = 0 ] && same "$L/f5000000" "$R/sha"; then t_ok "xfer: --sha256 upload"; else t_fail "xfer: --sha256 upload" "rc=$rc"; fi

# nesting: 256 directories (the top one included) travel, 257 do not
rm -rf "$L/deep" "$R/deep"
p=$L/deep i=1
while [ $i -lt 256 ]; do p=$p/d; i=$((i + 1)); done
mkdir -p "$p"
"$VSH" cp -q -r "$X" "$L/deep" ":$R/" 2>"$TMP/err"; rc=$?
expect_eq "xfer: 256 nested directories travel" "$rc $(cat "$TMP/err")$([ -d "$R/${p#$L/}" ] && echo there)" "0 there"
mkdir "$p/d"; rm -rf "$R/deep"
"$VSH" cp -q -r "$X" "$L/deep" ":$R/" 2>"$TMP/err"; rc=$?
expect_err "257 nested directories: a clear error" 1 "more than 256 nested directories"
rm -rf "$L/deep" "$R/deep"
agent_stop

# ---- a hostile guest: a fake agent (tpeer -l) that the host downloads from
AHELLO="$(hdr 1 16)0300$(le16 0)$(le32 31)$(le32 0)$(le32 0)"
VICTIM=$TMP/victim
VSTAT=
victim_set() { printf secret > "$VICTIM"; chmod 600 "$VICTIM"; touch -d '2005-01-01 00:00:00' "$VICTIM"; VSTAT=$(stat -c '%a %s %Y %u %g' "$VICTIM"); VMETA=$(victim_meta); }
victim_ok() { [ "$(stat -c '%a %s %Y %u %g' "$VICTIM")" = "$VSTAT" ] && [ "$(cat "$VICTIM")" = secret ] && [ ! -e "$TMP/outside" ]; }
# mode, owner, group, mtime and ctime to the nanosecond: any chmod, chown
# or utimens on the file shows in its ctime, even one to the same values
victim_meta() { stat -c '%a %u %g %y %z' "$VICTIM"; }
victim_untouched() {
	[ "$(victim_meta)" = "$VMETA" ] && return 0
	echo "victim before: $VMETA, after: $(victim_meta)" >&2; return 1
}
# guest CP-FLAGS SOURCE DEST STEPS...: the fake agent answers one download
# of :SOURCE into DEST with STEPS (hex frames; "frame" reads the host's
# answer).  Sets rc and err; $TMP/peer holds what it read ("2 LEN TEXT"
# for an ERROR).  cp gets 20 s, then it is killed (rc "hung").
guest() {
	g_f=$1 g_s=$2 g_d=$3; shift 3
	new_addr
	rm -rf "$TMP/dl" "$TMP/outside"; mkdir -p "$TMP/dl"; victim_set
	"$TPEER" -l "$LADDR" hello "send:$AHELLO" frame "$@" sleep:1500 >"$TMP/peer" 2>&1 &
	g_p=$!
	wait_for 5 addr_ready "$LADDR"
	g_t0=$(date +%s)
	"$VSH" cp -q $g_f -w 3 "$CADDR" ":$g_s" "$g_d" 2>"$TMP/err" &
	g_c=$!
	if wait_for "${G_LIMIT:-20}" gone "$g_c"; then wait "$g_c"; rc=$?; else kill -9 "$g_c"; wait "$g_c" 2>/dev/null; rc=hung; fi
	g_secs=$(($(date +%s) - g_t0))
	kill "$g_p" 2>/dev/null; wait "$g_p" 2>/dev/null
	err=$(cat "$TMP/err")
}
# refused NAME WANT-TEXT [CHECK...]: cp exited 1 saying WANT-TEXT, the
# guest got an ERROR frame saying it, nothing outside the destination
# changed, no temporary file is left, and CHECK (a command) holds
refused() {
	r_n=$1 r_w=$2; shift 2
	r_bad=
	[ "$rc" = 1 ] || r_bad="$r_bad status $rc;"
	case $err in *"$r_w"*) ;; *) r_bad="$r_bad message '$err';" ;; esac
	grep "^2 " "$TMP/peer" | grep -qF "$r_w" || r_bad="$r_bad the guest got no ERROR saying so;"
	victim_ok || r_bad="$r_bad the host file outside changed ($(stat -c '%a %s %Y %u' "$VICTIM"));"
	no_temp_tree "$TMP/dl" || r_bad="$r_bad temporary file left;"
	if [ $# -gt 0 ] && ! "$@"; then r_bad="$r_bad check '$*' failed;"; fi
	if [ -z "$r_bad" ]; then t_ok "xfer: $r_n"; else t_fail "xfer: $r_n" "$r_bad"; fi
}
# accepted NAME CHECK...: cp exited 0, nothing outside changed, CHECK holds
accepted() {
	a_n=$1; shift
	if [ "$rc" = 0 ] && victim_ok && no_temp_tree "$TMP/dl" && "$@"; then t_ok "xfer: $a_n"
	else t_fail "xfer: $a_n" "rc=$rc $err; outside: $(stat -c '%a %s %Y' "$VICTIM"); check '$*'"; fi
}
modes_are() { # PATH MODE ...
	while [ $# -gt 1 ]; do [ "$(stat -c %a "$1" 2>/dev/null)" = "$2" ] || return 1; shift 2; done
}
file_is() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(cat "$1")" = "$2" ]; }
ABC="send:$(data_frame 616263)$(end_frame 3 44bc2cf5ad770999)"
END_BAD="$(end_frame 3 0102030405060708)"
DIR_TOP="send:$(stat_frame 2 493 0 top)"
DONE_TOP="send:$(stat_frame 4 493 0 top)"
# a link to the directory it is in, then one that leads through it to the
# host file two levels above the top entry (lexically it stays inside)
CHAIN="send:$(stat_frame 3 511 0 top/s .)"
CHAIN2="send:$(stat_frame 3 511 0 top/t s/s/../../victim)"

guest "" top "$TMP/dl/" "send:$(stat_frame 1 420 3 top)" frame "send:$(data_frame 616263)$END_BAD" frame
refused "bad hash from the guest is refused, nothing written" "content hash mismatch: sent 0102030405060708, received" nothing_in "$TMP/dl"
guest "" top "$TMP/dl/" "send:$(stat_frame 1 420 3 top)" frame "send:$(data_frame 6162636465)" frame
refused "more data than announced is refused" "more data than the announced size" nothing_in "$TMP/dl"
guest "" top "$TMP/dl/" "send:$(stat_frame 1 420 3 ../x)" frame
refused "name ../x is refused" "unsafe name" nothing_in "$TMP/dl"
guest "" top "$TMP/dl/" "send:$(stat_frame 1 420 3 "$TMP/x")" frame
refused "absolute name is refused" "unsafe name" nothing_in "$TMP/dl"
guest -r top "$TMP/dl/" "$DIR_TOP" frame "send:$(stat_frame 1 420 3 top/../../outside)" frame
refused "name with .. inside a tree is refused" "unsafe name" nothing_in "$TMP/dl/top"

# names are bound to the request
guest "" /etc/hostname "$TMP/dl/" "send:$(stat_frame 1 420 3 authorized_keys)" frame "$ABC" frame "send:$DONE_FRAME" frame
refused "a top entry named otherwise than asked is refused" "refusing 'authorized_keys' from the guest: asked for 'hostname'" nothing_in "$TMP/dl"
guest "" /etc/hostname "$TMP/dl/newname" "send:$(stat_frame 1 420 3 .bashrc)" frame "$ABC" frame "send:$DONE_FRAME" frame
refused "...also when the top entry becomes the destination" "refusing '.bashrc' from the guest: asked for 'hostname'" nothing_in "$TMP/dl"
guest "" /etc/hostname "$TMP/dl/" "send:$(stat_frame 1 420 3 hostname)" frame "$ABC" frame \
	"send:$(stat_frame 1 420 3 authorized_keys)" frame "$ABC" frame "send:$DONE_FRAME" frame
refused "a second top entry is refused" "refusing 'authorized_keys' from the guest: asked for 'hostname'" \
	eval 'file_is "$TMP/dl/hostname" abc && [ "$(ls -a "$TMP/dl" | wc -l)" = 3 ]'
guest "" /etc/hostname "$TMP/dl/" "send:$(stat_frame 1 420 3 hostname)" frame "$ABC" frame \
	"send:$(stat_frame 1 420 3 hostname)" frame "$ABC" frame "send:$DONE_FRAME" frame
refused "the same top entry twice is refused" "refusing a second 'hostname' from the guest"
guest -r d "$TMP/dl/" "send:$(stat_frame 2 493 0 d)" frame "send:$(stat_frame 1 420 3 other/f)" frame "$ABC" frame
refused "'other/f' after top entry 'd' is refused, not put under d" "refusing 'other/f' from the guest: asked for 'd'" \
	eval 'nothing_in "$TMP/dl/d" && modes_are "$TMP/dl/d" 755'
guest "" top "$TMP/dl/" "send:$DONE_FRAME" frame
refused "nothing at all for what was asked is an error" "the guest sent nothing for 'top'" nothing_in "$TMP/dl"

# nothing the guest names reaches the terminal raw (scp's CVE-2019-6109):
# a refused name, and the progress bar's name, are shown escaped
guest "" top "$TMP/dl/" "send:$(stat_frame 1 420 3 "$EVIL")" frame
shows_escaped "xfer: a refused name from the guest is shown escaped, nothing of it raw" "$TMP/err" \
	"refusing '$EVIL_SHOWN' from the guest: asked for 'top'"
expect_eq "xfer: ...and cp fails, nothing written" "$rc$(nothing_in "$TMP/dl" && echo ' empty')" "1 empty"
new_addr
rm -rf "$TMP/dl"; mkdir -p "$TMP/dl"
"$TPEER" -l "$LADDR" hello "send:$AHELLO" frame "$DIR_TOP" frame "send:$(stat_frame 1 420 3 "top/$EVIL")" frame \
	"$ABC" frame "$DONE_TOP" frame "send:$DONE_FRAME" frame sleep:1500 >"$TMP/peer" 2>&1 &
g_p=$!
wait_for 5 addr_ready "$LADDR"
printf 'expect vsh-done\nwait 0\n' > "$TMP/evil.tpty"
"$TPTY" -T 20 -t 10 -o "$TMP/evil.out" "$TMP/evil.tpty" -- \
	sh -c "\"$VSH\" cp -r -w 3 \"$CADDR\" :top \"$TMP/dl/\"; echo vsh-done rc=\$?" 2>/dev/null
kill "$g_p" 2>/dev/null; wait "$g_p" 2>/dev/null
# (the bar's own carriage returns, and the pty's, are not the guest's)
tr -d '\r' < "$TMP/evil.out" > "$TMP/evil.bar"
shows_escaped "xfer: the progress bar shows a guest's name escaped (the pty saw no ESC, BEL)" "$TMP/evil.bar" \
	'\x1b]0;pwned\x07\x1b[2J\r...'
check "xfer: ...and the file is received under its name, as sent" \
	eval 'grep -q "vsh-done rc=0" "$TMP/evil.bar" && file_is "$TMP/dl/top/$EVIL" abc'
rm -rf "$TMP/dl"

# the depth-first order: an entry's parent is the directory being received
guest -r top "$TMP/dl/" "$DIR_TOP" frame "send:$(stat_frame 2 493 0 top/a)" frame "send:$(stat_frame 1 420 3 top/b)" frame "$ABC" frame
refused "an entry outside the directory being received is refused" "'top/b' out of order: expected an entry in 'top/a'" \
	eval '[ ! -e "$TMP/dl/top/b" ]'
guest -r top "$TMP/dl/" "$DIR_TOP" frame "send:$(stat_frame 2 493 0 top/a)" frame "$DONE_TOP" frame
refused "a DIREND for a directory not on top is refused" "DIREND 'top' out of order: 'top/a' is being received"
guest -r top "$TMP/dl/" "send:$(stat_frame 1 420 3 top/f)" frame "$ABC" frame
refused "an entry before its directory is refused" "'top/f' out of order: expected a top entry" nothing_in "$TMP/dl"
guest -r top "$TMP/dl/" "$DIR_TOP" frame "send:$DONE_FRAME" frame
refused "DONE inside an open directory is refused" "DONE before the DIREND of 'top'" modes_are "$TMP/dl/top" 755

# nothing the guest names is followed: symlinks are created verbatim, and
# no operation goes through one
guest -r top "$TMP/dl/" "$DIR_TOP" frame "$CHAIN" frame "$CHAIN2" frame \
	"send:$(stat_frame 4 2559 0 top/t)" frame "$DONE_TOP" frame "send:$DONE_FRAME" frame
refused "a symlink chain cannot carry a chmod out (DIREND naming a link)" "DIREND 'top/t' out of order" victim_untouched
guest "-r --preserve" top "$TMP/dl/" "$DIR_TOP" frame "$CHAIN" frame "$CHAIN2" frame \
	"send:$(stat_frame 4 390 0 top/t "" 1000000000 1)" frame "$DONE_TOP" frame "send:$DONE_FRAME" frame
refused "metadata through a link (chmod, chown, utimens with -p) is refused" "DIREND 'top/t' out of order" victim_untouched
guest -r top "$TMP/dl/" "$DIR_TOP" frame "$CHAIN" frame "$CHAIN2" frame "send:$(stat_frame 2 493 0 top/t)" frame
refused "a DIR over a guest's symlink is refused" "top/t: Not a directory" eval '[ -L "$TMP/dl/top/t" ]'
guest -r top "$TMP/dl/" "$DIR_TOP" frame "$CHAIN" frame "$CHAIN2" frame "send:$(stat_frame 1 438 3 top/t)" frame "$ABC" frame \
	"$DONE_TOP" frame "send:$DONE_FRAME" frame
accepted "a FILE over a guest's symlink replaces the link, not what it points to" eval 'file_is "$TMP/dl/top/t" abc'
guest -r top "$TMP/dl/" "$DIR_TOP" frame "send:$(stat_frame 2 493 0 top/sub)" frame "send:$(stat_frame 4 493 0 top/sub)" frame \
	"send:$(stat_frame 3 511 0 top/l sub)" frame "send:$(stat_frame 1 420 3 top/l/x)" frame "$ABC" frame
refused "writing through a symlink in the tree is refused" "'top/l/x' out of order" nothing_in "$TMP/dl/top/sub"
guest -r top "$TMP/dl/" "$DIR_TOP" frame "send:$(stat_frame 3 511 0 top/l ../../outside)" frame \
	"send:$(stat_frame 3 511 0 top/a "$TMP/outside")" frame "$DONE_TOP" frame "send:$DONE_FRAME" frame
accepted "absolute and escaping symlinks from the guest are created as sent, nothing followed" \
	eval '[ "$(readlink "$TMP/dl/top/l")" = ../../outside ] && [ "$(readlink "$TMP/dl/top/a")" = "$TMP/outside" ]'
guest "-r --safe-links" top "$TMP/dl/" "$DIR_TOP" frame "send:$(stat_frame 3 511 0 top/l ../../outside)" frame \
	"send:$(stat_frame 3 511 0 top/a "$TMP/outside")" frame "send:$(stat_frame 3 511 0 top/in l)" frame "$DONE_TOP" frame "send:$DONE_FRAME" frame
accepted "--safe-links against a guest: two skipped, counted, one kept" \
	eval '[ ! -L "$TMP/dl/top/l" ] && [ ! -L "$TMP/dl/top/a" ] && [ -L "$TMP/dl/top/in" ] && case $err in *"skipped 2 symlinks"*) ;; *) false;; esac'

# hard links: the first name must be a file received in the tree
guest -r top "$TMP/dl/" "$DIR_TOP" frame "$CHAIN" frame "$CHAIN2" frame "send:$(stat_frame 5 420 0 top/h top/t)" frame
refused "a hard link to a symlink is refused" "refusing a hard link to 'top/t': not a regular file in the tree"
guest -r top "$TMP/dl/" "$DIR_TOP" frame "$CHAIN" frame "send:$(stat_frame 2 493 0 top/d)" frame \
	"send:$(stat_frame 1 420 3 top/d/f)" frame "$ABC" frame "send:$(stat_frame 4 493 0 top/d)" frame \
	"send:$(stat_frame 5 420 0 top/h top/s/d/f)" frame
refused "a hard link whose first name goes through a symlink is refused" "refusing a hard link to 'top/s/d/f': not a regular file in the tree"
guest -r top "$TMP/dl/" "$DIR_TOP" frame "send:$(stat_frame 5 420 0 top/h ../victim)" frame
refused "a hard link out of the tree is refused" "refusing a hard link to '../victim': not in the tree"

# work is proportional to what the guest sends
guest "" top "$TMP/dl/" "send:$(stat_frame 1 420 4611686018427387904 top)" frame \
	"send:$(hole_frame 4611686018427387904)$(end_frame 4611686018427387904 88804a4927a4014b)" frame "send:$DONE_FRAME" frame
if [ "$rc" = 1 ]; then
	refused "a 2^62-byte file of one hole: refused at once (File too large)" "File too large" nothing_in "$TMP/dl"
elif [ "$g_secs" -le 5 ]; then
	accepted "a 2^62-byte file of one hole: done at once, holes not hashed as zeros" eval '[ "$(stat -c %s "$TMP/dl/top")" = 4611686018427387904 ]'
else
	t_fail "xfer: a 2^62-byte file of one hole" "rc=$rc after ${g_secs}s: $err"
fi
rm -rf "$TMP/dl"
guest "" top "$TMP/dl/" "send:$(stat_frame 1 420 -1 top)" frame "send:$(hole_frame 10)$(end_frame 10 185b704547c3cf22)" frame
refused "a HOLE in a stream of unknown size is refused" "HOLE in a stream of unknown size" nothing_in "$TMP/dl"
# a tree that fails part-way: its directories still get their modes
guest -r top "$TMP/dl/" "$DIR_TOP" frame "send:$(stat_frame 2 489 0 top/sub)" frame \
	"send:$(stat_frame 1 420 3 top/sub/f)" frame "send:$(data_frame 616263)$END_BAD" frame
refused "a tree failing part-way: every directory gets its mode" "content hash mismatch" modes_are "$TMP/dl/top" 755 "$TMP/dl/top/sub" 751

# a download grants nothing the operator did not ask for: without
# --preserve, modes as cp(1) gives them (no setuid, setgid or sticky bit,
# the umask applies; an existing directory or file keeps its mode), on
# success and on every failure
SUID_TOP="send:$(stat_frame 1 3565 3 top)" # 06755
guest "" top "$TMP/dl/" "$SUID_TOP" frame "$ABC" frame "send:$DONE_FRAME" frame
accepted "a 6755 file from the guest arrives as 755: no setuid, no setgid" eval 'file_is "$TMP/dl/top" abc && modes_are "$TMP/dl/top" 755'
umask 027
guest "" top "$TMP/dl/" "$SUID_TOP" frame "$ABC" frame "send:$DONE_FRAME" frame
umask 022
accepted "...and the umask applies (027: 750)" eval 'file_is "$TMP/dl/top" abc && modes_are "$TMP/dl/top" 750'
guest --preserve top "$TMP/dl/" "$SUID_TOP" frame "$ABC" frame "send:$DONE_FRAME" frame
accepted "...with --preserve it keeps them, as cp -p does (6755)" eval 'file_is "$TMP/dl/top" abc && modes_are "$TMP/dl/top" 6755'
guest -r top "$TMP/dl/" "send:$(stat_frame 2 4095 0 top)" frame "send:$(stat_frame 2 1533 0 top/sub)" frame \
	"send:$(stat_frame 1 420 3 top/sub/f)" frame "send:$(data_frame 616263)$END_BAD" frame
refused "new directories of a failed tree: no sticky, setgid or setuid bit (7777 and 2775: 755)" "content hash mismatch" \
	modes_are "$TMP/dl/top" 755 "$TMP/dl/top/sub" 755
# the operator's own directory, keys/ (0700), that the guest calls 0777
OP=$TMP/op
op_keys() { rm -rf "$OP"; mkdir -p "$OP/keys"; chmod 700 "$OP/keys"; }
KEYS="send:$(stat_frame 2 511 0 keys)"
KEYS_END="send:$(stat_frame 4 511 0 keys)"
op_keys
guest -r keys "$OP/" "$KEYS" frame "send:$(stat_frame 1 420 3 keys/f)" frame "send:$(data_frame 616263)$END_BAD" frame
refused "an existing 700 directory keeps its mode when the transfer fails (hash mismatch)" "content hash mismatch" \
	eval 'modes_are "$OP/keys" 700 && nothing_in "$OP/keys"'
op_keys
guest -r keys "$OP/" "$KEYS" frame "send:$(stat_frame 1 420 3 keys/f)" frame "send:$(data_frame 61)" close
if [ "$rc" = 255 ] && victim_ok && modes_are "$OP/keys" 700 && nothing_in "$OP/keys"; then
	t_ok "xfer: ...and when the guest vanishes mid-file"
else t_fail "xfer: ...and when the guest vanishes mid-file" "rc=$rc $err; keys $(stat -c %a "$OP/keys"): $(ls -A "$OP/keys")"; fi
op_keys
guest -r keys "$OP/" "$KEYS" frame "send:$(stat_frame 1 438 3 keys/f)" frame "$ABC" frame "$KEYS_END" frame "send:$DONE_FRAME" frame
accepted "...and on success; a new 666 file in it gets 644 (the umask)" \
	eval 'modes_are "$OP/keys" 700 "$OP/keys/f" 644 && file_is "$OP/keys/f" abc'
op_keys
guest "-r --preserve" keys "$OP/" "$KEYS" frame "send:$(stat_frame 1 438 3 keys/f)" frame "$ABC" frame "$KEYS_END" frame "send:$DONE_FRAME" frame
accepted "...with --preserve the modes sent apply (777, 666)" eval 'modes_are "$OP/keys" 777 "$OP/keys/f" 666'
rm -rf "$OP"; mkdir -p "$OP"; echo old > "$OP/top"; chmod 600 "$OP/top"
guest "" top "$OP/" "send:$(stat_frame 1 493 3 top)" frame "$ABC" frame "send:$DONE_FRAME" frame
accepted "a 600 file the download replaces keeps its mode (the guest said 755), as cp leaves it" \
	eval 'file_is "$OP/top" abc && modes_are "$OP/top" 600'
chmod 4755 "$OP/top"
guest "" top "$OP/" "$SUID_TOP" frame "$ABC" frame "send:$DONE_FRAME" frame
accepted "...but not a special bit: 4755 becomes 755" eval 'file_is "$OP/top" abc && modes_are "$OP/top" 755'
rm -rf "$OP"
# nesting: at most 256 directories, the top one included.  The DIR
# frames of top/d, top/d/d, ... in one awk (a fork per frame is slow
# under TCG): 36 fixed bytes, the path and two NULs.
nest_frames() { # N
	awk -v n="$1" 'BEGIN { p = "746f70"; for (i = 1; i <= n; i++) { p = p "2f64"; l = 36 + length(p) / 2 + 2
		printf "%02x%02x00002200000002000000ed010000%056d%s0000\n", l % 256, int(l / 256), 0, p } }'
}
set -- "$DIR_TOP" frame
for f in $(nest_frames 256); do set -- "$@" "send:$f" frame; done
guest -r top "$TMP/dl/" "$@"
refused "257 nested directories from the guest are refused" "more than 256 nested directories" modes_are "$TMP/dl/top/d/d/d" 755
set --
rm -rf "$TMP/dl" "$VICTIM"
