package kdc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// mitKDC is a running MIT krb5kdc for the test realm, with a KDC
// certificate from the test CA.
type mitKDC struct {
	dir, addr string
	env       []string
}

// startMITKDC runs krb5kdc with PKINIT (the KDC certificate and CA of s),
// the users (no keys, PKINIT only) and the realm's service, until the
// test ends. It skips (fails under CI) when MIT's KDC is not installed.
func startMITKDC(t *testing.T, s *kdctest.Server, users ...string) *mitKDC {
	t.Helper()
	p := testpeer.Require(t, "krb5kdc", "kdb5_util", "kadmin.local")
	dir := t.TempDir()
	k := &mitKDC{dir: dir}
	root := pkitest.WritePEM(t, dir, "root.pem", s.CA.CA.Root())
	kdcCert := pkitest.WritePEM(t, dir, "kdc.pem", s.KDCCert)
	kdcKey := pkitest.WritePEM(t, dir, "kdc.key", s.KDCKey)
	k.env = append(os.Environ(), "KRB5_CONFIG="+filepath.Join(dir, "krb5.conf"), "KRB5_KDC_PROFILE="+filepath.Join(dir, "kdc.conf"),
		"KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache"), "KRB5RCACHEDIR="+dir)
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db", "kadm5.acl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(prog string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.Env = k.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
		}
	}
	writeConf := func(port int) {
		k.addr = fmt.Sprintf("127.0.0.1:%d", port)
		krb5 := fmt.Sprintf("[libdefaults]\n\tdefault_realm = %[1]s\n\tdns_lookup_kdc = false\n\trdns = false\n\tudp_preference_limit = 1\n"+
			"[realms]\n\t%[1]s = {\n\t\tkdc = %[2]s\n\t\tpkinit_anchors = FILE:%[3]s\n\t}\n", kdctest.Realm, k.addr, root)
		kdcConf := fmt.Sprintf("[kdcdefaults]\n\tkdc_listen = %[2]s\n\tkdc_tcp_listen = %[2]s\n"+
			"[realms]\n\t%[1]s = {\n\t\tdatabase_name = %[3]s/db/principal\n\t\tkey_stash_file = %[3]s/db/stash\n\t\tacl_file = %[3]s/db/kadm5.acl\n"+
			"\t\tsupported_enctypes = aes256-cts-hmac-sha1-96:normal\n\t\tpkinit_identity = FILE:%[4]s,%[5]s\n\t\tpkinit_anchors = FILE:%[6]s\n"+
			"\t\tpkinit_eku_checking = scLogin\n\t\tpkinit_allow_upn = true\n\t}\n[logging]\n\tkdc = FILE:%[3]s/kdc.log\n",
			kdctest.Realm, k.addr, dir, kdcCert, kdcKey, root)
		for name, text := range map[string]string{"krb5.conf": krb5, "kdc.conf": kdcConf} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	writeConf(port)
	run(p[1], "create", "-s", "-r", kdctest.Realm, "-P", "masterpw")
	for _, u := range users {
		run(p[2], "-r", kdctest.Realm, "-q", "addprinc +requires_preauth -nokey "+u)
	}
	run(p[2], "-r", kdctest.Realm, "-q", "addprinc -randkey "+kdctest.Service)
	run(p[2], "-r", kdctest.Realm, "-q", "ktadd -k "+filepath.Join(dir, "service.keytab")+" "+kdctest.Service)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "kdc.log"))
			t.Logf("krb5kdc log:\n%s", log)
		}
	})
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if port, err = freePort(); err != nil {
				t.Fatal(err)
			}
			writeConf(port)
		}
		cmd := exec.Command(p[0], "-n", "-r", kdctest.Realm)
		cmd.Env = k.env
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting krb5kdc: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-exited:
				if attempt < 3 {
					t.Logf("krb5kdc exited (%v), trying another port: %s", err, out)
					goto retry
				}
				t.Fatalf("krb5kdc exited: %v\n%s", err, out)
			default:
			}
			if c, err := net.DialTimeout("tcp", k.addr, 200*time.Millisecond); err == nil {
				c.Close()
				t.Cleanup(func() {
					cmd.Process.Kill()
					<-exited
				})
				return k
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Kill()
		<-exited
		t.Fatalf("krb5kdc did not listen on %s:\n%s", k.addr, out)
	retry:
	}
}

// freePort returns a port free for TCP and UDP on 127.0.0.1 (closed again
// before krb5kdc binds it; startMITKDC retries if it was taken).
func freePort() (int, error) {
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP")
}

// TestClientAgainstMITKDC logs on with our PKINIT client to MIT krb5kdc
// (with a KDC certificate from our CA), in DH mode and public-key mode,
// gets a service ticket, decrypts it with the keytab MIT exported, and
// writes a ccache MIT klist reads. A certificate naming another user is
// refused with KDC_ERR_CLIENT_NAME_MISMATCH.
func TestClientAgainstMITKDC(t *testing.T) {
	t.Parallel()
	s := kdctest.New(t, kdctest.Options{KeyAlgorithm: pki.RSA2048, NoServe: true})
	requireMITClient(t, s) // skips without kinit, klist or the PKINIT plugin
	klist := testpeer.Path(t, "klist")
	s.AddUser("alice")
	k := startMITKDC(t, s, "alice", "bob")
	ktData, err := os.ReadFile(filepath.Join(k.dir, "service.keytab"))
	if err != nil {
		t.Fatal(err)
	}
	serviceKeys := keytabKeys(t, ktData)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		alg  pki.KeyAlgorithm
		opts kdc.PKINITOptions
	}{
		{"dh-p256", pki.P256, kdc.PKINITOptions{}},
		{"dh-rsa", pki.RSA2048, kdc.PKINITOptions{}},
		{"rsa-mode", pki.RSA2048, kdc.PKINITOptions{PublicKeyMode: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := s.Issue(t, "smartcard-logon", "alice", tc.alg)
			c := s.Client(cert, key)
			c.KDC = k.addr
			tgt, err := c.PKINIT(ctx, "alice", tc.opts)
			if err != nil {
				t.Fatalf("PKINIT against MIT: %v", err)
			}
			st, err := c.ServiceTicket(ctx, tgt, kdctest.Service)
			if err != nil {
				t.Fatalf("TGS against MIT: %v", err)
			}
			part, err := kdc.DecryptTicket(st.Ticket, serviceKeys)
			if err != nil || part.CName.PrincipalNameString() != "alice" {
				t.Fatalf("service ticket: %v, client %v", err, part.CName)
			}
			cache := filepath.Join(k.dir, "ours-"+tc.name)
			if err := kdc.WriteCCache(cache, tgt, st); err != nil {
				t.Fatal(err)
			}
			kl := exec.Command(klist, "-c", "FILE:"+cache)
			kl.Env = k.env
			out, err := kl.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "krbtgt/"+kdctest.Realm+"@"+kdctest.Realm) || !strings.Contains(string(out), kdctest.Service) {
				t.Fatalf("klist: %v\n%s", err, out)
			}
		})
	}
	cert, key := s.Issue(t, "smartcard-logon", "alice", pki.P256)
	c := s.Client(cert, key)
	c.KDC = k.addr
	_, err = c.PKINIT(ctx, "bob", kdc.PKINITOptions{})
	var re *kdc.RemoteError
	if !errors.As(err, &re) || re.Code != kdc.ErrClientNameMismatch {
		t.Errorf("alice's certificate for bob: %v, want KDC_ERR_CLIENT_NAME_MISMATCH", err)
	}
}

// keytabKeys reads every key of an MIT keytab.
func keytabKeys(t *testing.T, data []byte) []kdc.Key {
	t.Helper()
	var kt keytab.Keytab
	if err := kt.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	var keys []kdc.Key
	for _, e := range kt.Entries {
		keys = append(keys, kdc.Key{KVNO: int(e.KVNO), EType: e.Key.KeyType, Value: e.Key.KeyValue})
	}
	return keys
}
