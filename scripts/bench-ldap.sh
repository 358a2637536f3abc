#!/usr/bin/env bash
# bench-ldap.sh — the embedded directory and OpenLDAP slapd (back-mdb, same
# indexes) side by side: the same 100k users loaded into both (LDIF import
# vs slapadd, timed), then `scstation bench ldap` against each, equality
# searches on uid and on userPrincipalName, alternating servers.
#
# usage: scripts/bench-ldap.sh [USERS] [DURATION] [CONNS]
# needs: go, slapd, slapadd (Debian: slapd ldap-utils). Run from the repo root.
set -eu

USERS=${1:-100000}
DURATION=${2:-20s}
CONNS=${3:-16}
OURS_PORT=${OURS_PORT:-11389}
SLAPD_PORT=${SLAPD_PORT:-11390}

W=$(mktemp -d /tmp/bench-ldap.XXXXXX)
OURS_PID=
SLAPD_PID=
cleanup() {
	[ -n "$OURS_PID" ] && kill -INT "$OURS_PID" 2>/dev/null && wait "$OURS_PID" 2>/dev/null || true
	[ -n "$SLAPD_PID" ] && kill -INT "$SLAPD_PID" 2>/dev/null && wait "$SLAPD_PID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

SLAPD=$(command -v slapd || echo /usr/sbin/slapd)
SLAPADD=$(command -v slapadd || echo /usr/sbin/slapadd)

go build -o "$W/scstation" ./cmd/scstation
S="$W/scstation"

echo "== $USERS users (inetOrgPerson + upnPrincipal), one bind user"
awk -v n="$USERS" 'BEGIN {
	printf "dn: dc=example,dc=test\nobjectClass: top\nobjectClass: domain\ndc: example\n\n"
	printf "dn: ou=people,dc=example,dc=test\nobjectClass: organizationalUnit\nou: people\n\n"
	printf "dn: uid=bench,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: bench\ncn: Bench Reader\nsn: Reader\nuserPassword: bench-password\n\n"
	for (i = 0; i < n; i++)
		printf "dn: uid=user%d,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: upnPrincipal\nuid: user%d\ncn: User %d\nsn: %d\ngivenName: User\nmail: user%d@example.test\nuserPrincipalName: user%d@example.test\n\n", i, i, i, i, i, i
}' >"$W/users.ldif"

echo "== embedded: init, ldif import"
"$S" init --domain example.test --no-passphrase --dir "$W/st" >/dev/null
"$S" ldif import "$W/users.ldif" --dir "$W/st"

echo "== slapd: slapadd"
mkdir -p "$W/slapd/db"
cat >"$W/slapd/upn.schema" <<'EOF'
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.1.2.1 NAME 'upnPrincipal'
	DESC 'an entry with a userPrincipalName'
	SUP top AUXILIARY MAY ( userPrincipalName ) )
EOF
cat >"$W/slapd/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include $W/slapd/upn.schema
pidfile $W/slapd/slapd.pid
argsfile $W/slapd/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
# No per-operation logging, like the embedded server (slapd's default,
# stats, costs it half its throughput here).
loglevel 0
database mdb
maxsize 4294967296
suffix "dc=example,dc=test"
rootdn "cn=admin,dc=example,dc=test"
rootpw unused-$$
directory $W/slapd/db
index objectClass,uid,mail,cn,sn,givenName,displayName,userPrincipalName,member eq
EOF
start=$(date +%s%N)
"$SLAPADD" -q -f "$W/slapd/slapd.conf" -l "$W/users.ldif"
end=$(date +%s%N)
echo "slapadd: $(( (end - start) / 1000000 )) ms"

echo "== start both servers"
"$S" serve --dir "$W/st" --ldap "127.0.0.1:$OURS_PORT" --ldaps "" --http "" --kdc "" >"$W/serve.log" 2>&1 &
OURS_PID=$!
"$SLAPD" -d 0 -f "$W/slapd/slapd.conf" -h "ldap://127.0.0.1:$SLAPD_PORT/" >"$W/slapd.log" 2>&1 &
SLAPD_PID=$!
for i in $(seq 50); do
	if grep -q "^ldap " "$W/serve.log" 2>/dev/null && (echo >"/dev/tcp/127.0.0.1/$SLAPD_PORT") 2>/dev/null; then break; fi
	sleep 0.1
done

export BENCH_PW=bench-password
bench() {
	echo "-- $1 $2"
	"$S" bench ldap --url "ldap://127.0.0.1:$3" --bind-dn uid=bench,ou=people,dc=example,dc=test --password-env BENCH_PW \
		--conns "$CONNS" --duration "$DURATION" --filter "$2" --range "$USERS"
}
for filter in '(uid=user%d)' '(userPrincipalName=user%d@example.test)'; do
	bench embedded "$filter" "$OURS_PORT"
	bench slapd "$filter" "$SLAPD_PORT"
	bench embedded "$filter" "$OURS_PORT"
	bench slapd "$filter" "$SLAPD_PORT"
done
