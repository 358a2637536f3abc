#!/bin/sh
# tui-demo-memory.sh BIN [DEMO-ARGS...]: memory of `scstation demo` in tmux
# (80x24) while a newcomer uses it, on a fresh demo directory (alice, bob,
# carol, the officer and 1,000 generated users): sign
# in with the officer's virtual card, enroll alice on a blank virtual card,
# search the directory, open the CA, Cards, Audit and Logon screens, and
# back to Home. Prints the
# resident set (VmRSS) after each stage and the peak (VmHWM), in kB, then
# quits the station. Polls the screen; never sleeps a fixed time to assert.
set -eu
bin=$1
shift
dir=$(mktemp -d)
sess=scmem$$
trap 'tmux kill-session -t "$sess" 2>/dev/null || true; rm -rf "$dir"' EXIT

"$bin" demo --dir "$dir/demo" --no-tui >/dev/null

tmux new-session -d -s "$sess" -x 80 -y 24 "env TERM=xterm-256color NO_COLOR= $bin demo --dir $dir/demo $*"
pid=$(tmux display-message -p -t "$sess" '#{pane_pid}')

# wait TEXT: until the pane shows TEXT (60 s at most, then fail).
wait() {
	i=0
	while ! tmux capture-pane -p -t "$sess" | grep -qF -- "$1"; do
		i=$((i + 1))
		if [ $i -gt 600 ]; then
			echo "never showed: $1" >&2
			tmux capture-pane -p -t "$sess" >&2
			exit 1
		fi
		sleep 0.1
	done
}
keys() { tmux send-keys -t "$sess" "$@"; }
mem() {
	awk -v stage="$1" '/^VmRSS/ {rss=$2} /^VmHWM/ {hwm=$2} END {printf "%-28s VmRSS %6d kB  VmHWM %6d kB\n", stage, rss, hwm}' "/proc/$pid/status"
}

wait "Readers"
mem "first Home frame"
keys 4
wait "virtual card of officer"
keys -l 24680135
keys Enter
wait "signed in as officer"
mem "officer signed in"
keys 5
wait "user:"
keys -l alice
wait "1 user"
keys Enter
wait "Certificates for alice"
keys Enter
wait "┃ Card"
keys Enter
wait "┃ PIN"
keys Down
wait "> random"
keys Enter
wait "Card enrolled for alice"
mem "alice enrolled"
keys Enter
wait "user:"
# The Enroll screen takes the digits as text: tab to the next screen.
keys Tab
wait "card(s)"
keys 3
wait "search:"
keys -l a
wait "the first 50 users"
keys Escape
wait "g groups"
keys 2
wait "certificates"
keys 7
wait "Audit"
keys 8
wait "PIN logon test"
keys 1
wait "Readers"
mem "all screens browsed"
keys q
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
	i=$((i + 1))
	sleep 0.1
done
