# xfer: file transfer, upload and download (sourced by suite.sh)

le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
le64() { echo "$(le32 "$1")$(le32 0)"; }
hdr() { echo "$(le32 "$2")$(le16 "$1")0000"; }
tohex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
# STAT frame: KIND MODE(decimal) SIZE PATH [LINK]
stat_frame() {
	sf_p="$(le32 "$1")$(le32 "$2")$(le64 "$3")$(le64 0)$(le32 0)$(le32 0)$(le32 0)$(tohex "$4")00$(tohex "${5:-}")00"
	echo "$(hdr 34 $((${#sf_p} / 2)))$sf_p"
}
no_temp() { ! ls -a "$1" 2>/dev/null | grep -q '\.vsh-'; }
same() { cmp -s "$1" "$2"; }
# "path mode [size] [mtime]" for every entry ("path -> target" for links)
tree_list() {
	(cd "$1" && find . | sort | while read -r f; do
		if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"
		elif [ -d "$f" ]; then echo "$f $(stat -c "%a${2:+ %Y}" "$f")"
		else echo "$f $(stat -c "%a %s${2:+ %Y}" "$f")"; fi
	done)
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

# mode travels always; mtime with -p
"$TGEN" 100 1 > "$L/m"; chmod 751 "$L/m"; touch -d '2001-02-03 04:05:06' "$L/m"
rm -f "$R/m"; "$VSH" cp -q "$X" "$L/m" ":$R/m"
expect_eq "xfer: mode kept without -p" "$(stat -c %a "$R/m")" 751
"$VSH" cp -q --preserve "$X" "$L/m" ":$R/mp"
expect_eq "xfer: mtime kept with -p" "$(stat -c %Y "$R/mp")" "$(stat -c %Y "$L/m")"

# a tree: modes, symlinks (inside, dangling, absolute), empty dirs; -r -p
T=$L/tree
mkdir -p "$T/a/b" "$T/empty" "$T/ro"
"$TGEN" 3000 3 > "$T/a/b/data"; echo x > "$T/a/x"; : > "$T/a/b/zero"
ln -s b/data "$T/a/lnk"; ln -s /etc/hostname "$T/abs"; ln -s nowhere "$T/dangling"
chmod 700 "$T/a/b"; chmod 640 "$T/a/x"; chmod 555 "$T/ro"
touch -d '2010-01-01' "$T/a/b/data" "$T/a/x"
"$VSH" cp -q -r --preserve "$X" "$T" ":$R/"; rc=$?
expect_eq "xfer: upload a tree (-r -p)" "$rc" 0
expect_eq "xfer: uploaded tree identical (modes, links, sizes, mtimes)" "$(tree_list "$R/tree" t)" "$(tree_list "$T" t)"
rm -rf "$L/tree2"
"$VSH" cp -q -r --preserve "$X" ":$R/tree" "$L/tree2"; rc=$?
# the host refuses the absolute link from the guest: trees with one fail
case $rc in 1) t_ok "xfer: download of a tree holding an absolute symlink is refused";; *) t_fail "xfer: absolute symlink from the guest" "rc=$rc";; esac
# drop abs from the guest's copy, keeping its directory's time (-p below)
touch -r "$R/tree" "$TMP/rref"; rm -f "$R/tree/abs"; touch -r "$TMP/rref" "$R/tree"; rm -rf "$L/tree2"
"$VSH" cp -q -r --preserve "$X" ":$R/tree" "$L/tree2"; rc=$?
# drop abs from the original too, keeping its directory's time
touch -r "$T" "$TMP/tref"; rm -f "$T/abs"; touch -r "$TMP/tref" "$T"
expect_eq "xfer: download a tree (-r -p)" "$rc" 0
expect_eq "xfer: downloaded tree identical" "$(tree_list "$L/tree2" t)" "$(tree_list "$T" t)"
"$VSH" cp -q "$X" ":$R/tree" "$L/t3" 2>"$TMP/err"; rc=$?
case "$rc:$(cat "$TMP/err")" in 1:*"Is a directory (use -r)"*) t_ok "xfer: a directory without -r: clear error";; *) t_fail "xfer: a directory without -r" "$rc $(cat "$TMP/err")";; esac

# streaming: stdin to a remote file, a remote file to stdout
"$TGEN" 1000000 21 | "$VSH" cp -q "$X" - ":$R/fromstdin"
expect_eq "xfer: stdin streamed to a remote file" "$("$TGEN" -c 1000000 21 < "$R/fromstdin")" "ok 1000000"
r=$("$VSH" cp -q "$X" ":$R/fromstdin" - | "$TGEN" -c 1000000 21)
expect_eq "xfer: remote file streamed to stdout" "$r" "ok 1000000"

# exact errors, exit status 1
xerr() { # NAME WANT-TEXT CP-ARGS...
	xe_n=$1 xe_w=$2; shift 2
	"$VSH" cp -q "$X" "$@" 2>"$TMP/err"; xe_rc=$?
	case "$xe_rc:$(cat "$TMP/err")" in 1:*"$xe_w"*) t_ok "xfer: $xe_n";; *) t_fail "xfer: $xe_n" "$xe_rc $(cat "$TMP/err")";; esac
}
xerr "no such remote file" "No such file or directory" ":$R/nonexistent" "$L/x"
xerr "no such local file" "No such file or directory" "$L/nonexistent" ":$R/x"
xerr "upload into a missing directory" "No such file or directory" "$L/f1" ":$R/no/such/dir/f"
"$VSH" cp -q --mkdir "$X" "$L/f1" ":$R/made/by/mkdir/f"; rc=$?
if [ $rc = 0 ] && same "$L/f1" "$R/made/by/mkdir/f"; then t_ok "xfer: --mkdir creates the parents"; else t_fail "xfer: --mkdir" "rc=$rc"; fi
mkdir -p "$R/isdir/f1"
xerr "target is a directory" "Is a directory" "$L/f1" ":$R/isdir/"
long=$(printf '%0300d' 0)
xerr "remote path too long" "too long" "$L/f1" ":$R/$long"
xerr "local path too long" "too long" ":$R/f1" "$L/$long"

# permission denied: an agent running as nobody writing into root's dir
if [ "$(id -u)" = 0 ]; then
	new_addr
	if [ "$VS_TRANSPORT" = unix ]; then
		# somewhere nobody can reach, whatever the mode of $TMP's parents
		pub=$(mktemp -d /tmp/vs-nobody.XXXXXX); chmod 1777 "$pub"
		LADDR=unix:$pub/nobody.sock CADDR=$LADDR
	fi
	mkdir -p "$R/locked"; chmod 755 "$R/locked"; chmod 711 "$R" "$TMP"
	"$TGEN" -u 65534 "$AGENT" --listen "$LADDR" ${VS_TRANSPORT:+$( [ "$VS_TRANSPORT" = vsock ] && echo --allow 1)} 2>>"$TMP/agent.log" &
	np=$!
	wait_for 5 addr_ready "$LADDR"
	"$VSH" cp -q "$CADDR" "$L/f1" ":$R/locked/f" 2>"$TMP/err"; rc=$?
	case "$rc:$(cat "$TMP/err")" in 1:*"Permission denied"*) t_ok "xfer: permission denied";; *) t_fail "xfer: permission denied" "$rc $(cat "$TMP/err")";; esac
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
case "$rc:$(cat "$TMP/err")" in 1:*"changed while being read"*) t_ok "xfer: file changed while read: clear error";; *) t_fail "xfer: file changed while read" "$rc $(cat "$TMP/err")";; esac
expect_eq "xfer: ...old target intact, no temporary file" "$(cat "$R/grow")$(no_temp "$R" && echo clean)" "oldclean"
rm -f "$L/grow"

# interrupted upload: the controller dies mid-stream
echo old > "$R/intr"
(
	"$TGEN" 3000000 8
	sleep 30
) | "$VSH" cp -q "$X" - ":$R/intr" &
cp_pid=$!
wait_for 10 sh -c "ls -a '$R' | grep -q '\.intr\.vsh-'"
sleep 0.3
CHILD_PARENT=$cp_pid
kill -9 $(children_of) "$cp_pid" 2>/dev/null; wait "$cp_pid" 2>/dev/null
wait_for 5 no_temp "$R"
expect_eq "xfer: interrupted upload: old target intact, no temporary file" "$(cat "$R/intr")$(no_temp "$R" && echo clean)" "oldclean"

# interrupted download: the agent's session dies mid-stream
echo old > "$L/intr"
mkfifo "$R/fifo"
(
	"$TGEN" 2000000 9
	sleep 30
) > "$R/fifo" &
wp=$!
"$VSH" cp -q "$X" ":$R/fifo" "$L/intr" 2>"$TMP/err" &
cp_pid=$!
wait_for 10 sh -c "ls -a '$L' | grep -q '\.intr\.vsh-'"
sleep 0.3
CHILD_PARENT=$APID
kill -9 $(children_of) 2>/dev/null
wait "$cp_pid"; rc=$?
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
expect_eq "xfer: interrupted download exits 255 (connection lost)" "$rc" 255
expect_eq "xfer: interrupted download: old file intact, no temporary file" "$(cat "$L/intr")$(no_temp "$L" && echo clean)" "oldclean"

# the controller killed by SIGTERM mid-download removes its temporary file
(
	"$TGEN" 2000000 9
	sleep 30
) > "$R/fifo" &
wp=$!
"$VSH" cp -q "$X" ":$R/fifo" "$L/intr" 2>/dev/null &
cp_pid=$!
wait_for 10 sh -c "ls -a '$L' | grep -q '\.intr\.vsh-'"
kill -TERM "$cp_pid"; wait "$cp_pid" 2>/dev/null
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
expect_eq "xfer: SIGTERM mid-download: old file intact, no temporary file" "$(cat "$L/intr")$(no_temp "$L" && echo clean)" "oldclean"
rm -f "$R/fifo"

# ENOSPC in the receiver (the guest: a small tmpfs)
if [ -e /etc/vsock-test-guest ] && mkdir -p "$TMP/small" && mount -t tmpfs -o size=1m tmpfs "$TMP/small" 2>/dev/null; then
	echo old > "$TMP/small/f"
	"$VSH" cp -q "$X" "$L/f5000000" ":$TMP/small/f" 2>"$TMP/err"; rc=$?
	case "$rc:$(cat "$TMP/err")" in 1:*"No space left on device"*) t_ok "xfer: ENOSPC on the remote side: clear error";; *) t_fail "xfer: ENOSPC remote" "$rc $(cat "$TMP/err")";; esac
	expect_eq "xfer: ...old file intact, no temporary file" "$(cat "$TMP/small/f")$(no_temp "$TMP/small" && echo clean)" "oldclean"
	"$VSH" cp -q "$X" ":$L/f5000000" "$TMP/small/f" 2>"$TMP/err"; rc=$?
	case "$rc:$(cat "$TMP/err")" in 1:*"No space left on device"*) t_ok "xfer: ENOSPC on the local side: clear error";; *) t_fail "xfer: ENOSPC local" "$rc $(cat "$TMP/err")";; esac
	expect_eq "xfer: ...old file intact, no temporary file" "$(cat "$TMP/small/f")$(no_temp "$TMP/small" && echo clean)" "oldclean"
	umount "$TMP/small"
else
	t_skip "xfer: ENOSPC" "runs in the test VM (small tmpfs)"
fi

# sparse and over 4 GiB: holes travel as holes (on the dev machine only:
# 5 GiB of zeros are hashed on both ends, too slow under TCG)
if [ "$VS_TRANSPORT" = unix ]; then
	rm -f "$L/sparse" "$R/sparse"
	truncate -s 5G "$L/sparse"
	printf 'head' | dd of="$L/sparse" conv=notrunc 2>/dev/null
	printf 'middle' | dd of="$L/sparse" bs=1 seek=3000000000 conv=notrunc 2>/dev/null
	printf 'tail' | dd of="$L/sparse" bs=1 seek=$((5 * 1024 * 1024 * 1024 - 4)) conv=notrunc 2>/dev/null
	"$VSH" cp -q "$X" "$L/sparse" ":$R/sparse"; rc=$?
	if [ $rc = 0 ] && [ "$(stat -c %s "$R/sparse")" = 5368709120 ] && same "$L/sparse" "$R/sparse"; then t_ok "xfer: 5 GiB sparse file, byte-exact"; else t_fail "xfer: 5 GiB sparse file" "rc=$rc"; fi
	blocks=$(stat -c %b "$R/sparse")
	if [ "$blocks" -lt 1000 ]; then t_ok "xfer: holes kept ($blocks blocks)"; else t_fail "xfer: holes kept" "$blocks blocks"; fi
	rm -f "$L/sparse2"
	"$VSH" cp -q "$X" ":$R/sparse" "$L/sparse2"; rc=$?
	if [ $rc = 0 ] && same "$L/sparse" "$L/sparse2" && [ "$(stat -c %b "$L/sparse2")" -lt 1000 ]; then t_ok "xfer: 5 GiB sparse download, holes kept"; else t_fail "xfer: sparse download" "rc=$rc"; fi
	rm -f "$L/sparse" "$R/sparse" "$L/sparse2"
else
	t_skip "xfer: 5 GiB sparse file" "dev machine only"
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
agent_stop

# a hostile or broken guest: a fake agent that the controller downloads from
AHELLO="$(hdr 1 16)0200$(le16 0)$(le32 31)$(le32 0)$(le32 0)"
fake_dl() { # NAME WANT-TEXT CP-FLAGS SOURCE STEPS...
	fd_n=$1 fd_w=$2 fd_f=$3 fd_s=$4; shift 4
	new_addr
	rm -rf "$TMP/dl" "$TMP/outside"; mkdir -p "$TMP/dl"
	"$TPEER" -l "$LADDR" hello "send:$AHELLO" frame "$@" sleep:1500 >/dev/null 2>&1 &
	fp=$!
	wait_for 5 addr_ready "$LADDR"
	"$VSH" cp -q $fd_f -w 3 "$CADDR" ":$fd_s" "$TMP/dl/" 2>"$TMP/err"; rc=$?
	kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
	left=$(find "$TMP/dl" -type f | tr '\n' ' ')
	case "$rc:$(cat "$TMP/err")" in
	1:*"$fd_w"*) if [ -z "$left" ] && [ ! -e "$TMP/outside" ] && [ ! -e "$TMP/x" ]; then t_ok "xfer: $fd_n"; else t_fail "xfer: $fd_n" "left: $left"; fi ;;
	*) t_fail "xfer: $fd_n" "$rc $(cat "$TMP/err")" ;;
	esac
}
END_BAD="$(hdr 37 24)$(le32 1)$(le32 0)$(le64 3)0102030405060708"
fake_dl "bad hash from the guest is refused, nothing written" "content hash mismatch: sent 0102030405060708, received" "" top \
	"send:$(stat_frame 1 420 3 top)" frame "send:$(hdr 35 3)616263$END_BAD" frame
fake_dl "more data than announced is refused" "more data than the announced size" "" top \
	"send:$(stat_frame 1 420 3 top)" frame "send:$(hdr 35 5)6162636465"
fake_dl "name ../x is refused" "unsafe name" "" top "send:$(stat_frame 1 420 3 ../x)" frame
fake_dl "absolute name is refused" "unsafe name" "" top "send:$(stat_frame 1 420 3 "$TMP/x")" frame
fake_dl "name with .. inside a tree is refused" "unsafe name" "-r" top \
	"send:$(stat_frame 2 493 0 top)" frame "send:$(stat_frame 1 420 3 top/../../outside)" frame
fake_dl "symlink escaping the tree is refused" "symlink that leaves" "-r" top \
	"send:$(stat_frame 2 493 0 top)" frame "send:$(stat_frame 3 511 0 top/l ../../outside)" frame
fake_dl "absolute symlink is refused" "symlink that leaves" "-r" top \
	"send:$(stat_frame 2 493 0 top)" frame "send:$(stat_frame 3 511 0 top/l "$TMP")" frame
fake_dl "writing through a symlink in the tree is refused" "top/l/x" "-r" top \
	"send:$(stat_frame 2 493 0 top)" frame "send:$(stat_frame 2 493 0 top/sub)" frame \
	"send:$(stat_frame 3 511 0 top/l sub)" frame "send:$(stat_frame 1 420 3 top/l/x)" frame
