#!/usr/bin/env bash
# bench-mail.sh — whole commands, side by side: sign+encrypt and
# decrypt+verify of a 1 MB message with soft keys, `scstation mail` against
# `openssl cms` on the same input and the same keys and certificates (a
# P-256 signing key for alice, RSA-2048 encryption keys for bob and alice,
# all issued by a fresh station CA; AES-256-CBC; both encrypt to bob and
# alice). openssl needs two processes for each direction (cms -sign |
# cms -encrypt, cms -decrypt | cms -verify); scstation does each in one,
# including opening the station, looking the recipients up in the
# directory and checking them against the CA database.
#
# usage: scripts/bench-mail.sh [RUNS]   (KEEP=1 keeps the work directory)
# needs: go, openssl. Run from the repo root.
set -eu

RUNS=${1:-20}
W=$(mktemp -d /tmp/bench-mail.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT INT TERM

go build -o "$W/scstation" ./cmd/scstation
S="$W/scstation"
D="--dir=$W/st"

"$S" init --domain example.test --no-passphrase "$D" >/dev/null
for u in alice bob; do "$S" user add "$u" --mail "$u@example.test" "$D" >/dev/null; done
issue() { # user template openssl-newkey-args...
	local u=$1 t=$2
	shift 2
	openssl req -new -newkey "$@" -nodes -keyout "$W/$u-$t.key" -subj /CN=x -out "$W/$u-$t.csr" 2>/dev/null
	"$S" ca issue --template "$t" --csr "$W/$u-$t.csr" --user "$u" --out "$W/$u-$t.pem" "$D" 2>/dev/null
	openssl x509 -in "$W/$u-$t.pem" -out "$W/$u-$t.crt" # the leaf alone, for openssl -signer/-recip
}
issue alice smime-signing ec -pkeyopt ec_paramgen_curve:P-256
issue alice smime-encryption rsa:2048
issue bob smime-encryption rsa:2048
CA="$W/st/ca/chain.pem"

awk 'BEGIN {
	printf "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n"
	n = 0
	while (n < 1048576) { l = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"; printf "%s", l; n += length(l) }
}' >"$W/msg.eml"
echo "message: $(wc -c <"$W/msg.eml") bytes, $RUNS runs each, $(nproc) cores"

# Each side once, and each reads the other's output (a correctness check).
"$S" mail sign-encrypt --in "$W/msg.eml" --out "$W/ours.p7m" --cert "$W/alice-smime-signing.pem" --key "$W/alice-smime-signing.key" "$D" >/dev/null
openssl cms -sign -in "$W/msg.eml" -signer "$W/alice-smime-signing.crt" -inkey "$W/alice-smime-signing.key" -md sha256 -from alice@example.test |
	openssl cms -encrypt -aes256 -from alice@example.test -out "$W/theirs.p7m" "$W/bob-smime-encryption.crt" "$W/alice-smime-encryption.crt"
openssl cms -decrypt -in "$W/ours.p7m" -recip "$W/bob-smime-encryption.crt" -inkey "$W/bob-smime-encryption.key" |
	openssl cms -verify -CAfile "$CA" -out /dev/null 2>/dev/null
"$S" mail decrypt --in "$W/theirs.p7m" --out /dev/null --cert "$W/bob-smime-encryption.crt" --key "$W/bob-smime-encryption.key" "$D" >/dev/null

# timeit FUNC prints the mean wall and CPU (user+sys, all processes) time
# per run in microseconds: "wall cpu". CPU time is the steadier figure on a
# shared machine.
timeit() {
	local TIMEFORMAT='%R %U %S' t
	t=$({ time { for _ in $(seq "$RUNS"); do "$1" 2>/dev/null; done; }; } 2>&1)
	awk -v n="$RUNS" -v t="$t" 'BEGIN { split(t, a, " "); printf "%d %d", a[1] * 1e6 / n, (a[2] + a[3]) * 1e6 / n }'
}
ours_se() { "$S" mail sign-encrypt --in "$W/msg.eml" --out "$W/o.p7m" --cert "$W/alice-smime-signing.pem" --key "$W/alice-smime-signing.key" "$D" >/dev/null; }
theirs_se() {
	openssl cms -sign -in "$W/msg.eml" -signer "$W/alice-smime-signing.crt" -inkey "$W/alice-smime-signing.key" -md sha256 |
		openssl cms -encrypt -aes256 -out "$W/t.p7m" "$W/bob-smime-encryption.crt" "$W/alice-smime-encryption.crt"
}
ours_dv() { "$S" mail decrypt --in "$W/ours.p7m" --out "$W/o.eml" --cert "$W/bob-smime-encryption.crt" --key "$W/bob-smime-encryption.key" "$D" >/dev/null; }
theirs_dv() {
	openssl cms -decrypt -in "$W/theirs.p7m" -recip "$W/bob-smime-encryption.crt" -inkey "$W/bob-smime-encryption.key" |
		openssl cms -verify -CAfile "$CA" -out "$W/t.eml" 2>/dev/null
}

# Alternate the two, twice, so both see the same machine load.
declare -A W_ C_
for round in 1 2; do
	for f in ours_se theirs_se ours_dv theirs_dv; do
		read -r w c <<<"$(timeit "$f")"
		W_[$f]=$((${W_[$f]:-0} + w / 2))
		C_[$f]=$((${C_[$f]:-0} + c / 2))
	done
done
ms() { awk -v x="$1" 'BEGIN { printf "%.1f", x / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-15s %-11s %12s %12s %7s\n' "1 MB message" "" "scstation" "openssl cms" "ratio"
for dir in se dv; do
	name=sign+encrypt
	[ "$dir" = dv ] && name=decrypt+verify
	printf '%-15s %-11s %9s ms %9s ms %7s\n' "$name" "wall" "$(ms "${W_[ours_$dir]}")" "$(ms "${W_[theirs_$dir]}")" "$(ratio "${W_[ours_$dir]}" "${W_[theirs_$dir]}")"
	printf '%-15s %-11s %9s ms %9s ms %7s\n' "" "CPU" "$(ms "${C_[ours_$dir]}")" "$(ms "${C_[theirs_$dir]}")" "$(ratio "${C_[ours_$dir]}" "${C_[theirs_$dir]}")"
done
echo "(ratio = scstation / openssl; below 1 is faster; CPU = user+sys of all processes)"
