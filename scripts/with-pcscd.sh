#!/usr/bin/env bash
# with-pcscd.sh CMD [ARGS...]: run CMD with a pcscd that offers four vsmartcard
# virtual readers, then stop that pcscd, whatever CMD's result.
#
#   Virtual PCD 00 00  127.0.0.1:35963      Test PCD 00 00  127.0.0.1:40059
#   Virtual PCD 00 01  127.0.0.1:35964      Test PCD 00 01  127.0.0.1:40060
#
# card/cardtest hands these readers out to tests under a lock. There is one
# pcscd per host (its socket path is compiled in): a pcscd that is already
# running is used as it is and left running. The second reader entry uses
# its own copy of the vpcd driver, because vpcd keeps its sockets in
# per-library globals indexed by slot (two entries sharing one library both
# end up on the second entry's ports).
#
# pcscd runs without -a: APDU logging would write PINs into the log.
#
# A test that stops and restarts pcscd (card's TestPCSCDRestart, through
# cardtest.StartPCSCD) needs it to itself: it locks $lock exclusively.
# This script holds that lock shared while CMD runs, so the two never
# overlap. CMD does not get the descriptor, so that nothing CMD leaves
# running holds the lock on.
set -uo pipefail

lock=/tmp/scstation-pcscd.lock
if command -v flock >/dev/null &&
	{ { exec 9<"$lock"; } 2>/dev/null || { exec 9>>"$lock"; } 2>/dev/null; }; then
	if ! flock -s -n 9; then
		echo "with-pcscd: waiting for a test that restarts pcscd to finish ($lock)" >&2
		flock -s 9
	fi
fi
run() { "$@" 9<&-; }

pidfile=/run/pcscd/pcscd.pid
running() { tr -dc '0-9' 2>/dev/null <"$pidfile"; } # the file ends in a NUL
if [ -n "$(running)" ] && kill -0 "$(running)" 2>/dev/null; then
	echo "with-pcscd: using the running pcscd (pid $(running))" >&2
	run "$@"
	exit
fi

pcscd=$(command -v pcscd || echo /usr/sbin/pcscd)
driver=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
if [ ! -x "$pcscd" ] || [ ! -f "$driver" ]; then
	echo "with-pcscd: pcscd or vsmartcard-vpcd missing (make deps); card tests will skip, or fail with CI=true" >&2
	run "$@"
	exit
fi

dir=$(mktemp -d /tmp/scstation-pcscd.XXXXXX)
mkdir -p "$dir/conf" "$dir/lib"
cp "$driver" "$dir/lib/libifdvpcd-test.so"
cat >"$dir/conf/vpcd" <<CONF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:0x8C7B
LIBPATH      $driver
CHANNELID    0x8C7B

FRIENDLYNAME "Test PCD"
DEVICENAME   /dev/null:0x9C7B
LIBPATH      $dir/lib/libifdvpcd-test.so
CHANNELID    0x9C7B
CONF

log=/tmp/scstation-pcscd.log
"$pcscd" --foreground -c "$dir/conf" >"$log" 2>&1 9<&- &
pid=$!
stop() {
	kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap stop EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Ready when it has written its pid file and the socket exists.
for _ in $(seq 100); do
	if [ "$(running)" = "$pid" ] && [ -S /run/pcscd/pcscd.comm ]; then
		break
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "with-pcscd: pcscd did not start (see $log); card tests will skip, or fail with CI=true" >&2
		break
	fi
	sleep 0.05
done

run "$@"
