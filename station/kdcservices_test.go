package station

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/pkitest"
)

// TestDirectoryServices registers services on directory accounts, moves
// one from kdc.json, and has MIT kvno (after MIT kinit with a certificate
// from the station CA) and our client get tickets for them from the
// station's KDC, opened with the exported keytabs. Disabling the user, or
// the service's account, refuses the tickets.
func TestDirectoryServices(t *testing.T) {
	p := testpeer.Require(t, "kinit", "kvno", "klist")
	kdctest.RequireMITPKINIT(t)
	st, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir, err := st.Directory()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.AddUser(directory.User{Name: "alice", UPN: "alice@example.test"}); err != nil {
		t.Fatal(err)
	}
	// A service from an older version, in kdc.json.
	store, err := st.KDCStore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddService("host/station.example.test"); err != nil {
		t.Fatal(err)
	}
	oldKT, err := st.ServiceKeytab("host/station.example.test")
	if err != nil {
		t.Fatal(err)
	}

	web, err := st.AddService("HTTP/web.example.test", "svc-web")
	if err != nil || web.KVNO != 1 || web.Account != "svc-web" {
		t.Fatalf("AddService: %+v %v", web, err)
	}
	www, err := st.AddService("HTTP/www.example.test", "SVC-Web") // the same account: new keys for both
	if err != nil || www.KVNO != 2 || www.DN != web.DN {
		t.Fatalf("second SPN: %+v %v", www, err)
	}
	host, err := st.AddService("host/station.example.test", "") // moves from kdc.json
	if err != nil || host.KVNO != 2 || host.Account != "svc-host-station" {
		t.Fatalf("moving the kdc.json service: %+v %v", host, err)
	}
	if store, err = st.KDCStore(); err != nil {
		t.Fatal(err)
	}
	if n := store.Names(); len(n) != 0 {
		t.Errorf("kdc.json still holds %v", n)
	}
	if _, err := st.AddService("http/WEB.example.test", "svc-other"); !errors.Is(err, directory.ErrAmbiguous) {
		t.Errorf("an SPN on a second account: %v", err)
	}
	list, err := st.Services()
	if err != nil || len(list) != 3 {
		t.Fatalf("Services: %+v %v", list, err)
	}

	work := t.TempDir()
	keytabs := map[string]string{}
	for _, spn := range []string{"HTTP/web.example.test", "HTTP/www.example.test", "host/station.example.test"} {
		kt, err := st.ServiceKeytab(spn)
		if err != nil {
			t.Fatal(err)
		}
		keytabs[spn] = filepath.Join(work, strings.ReplaceAll(spn, "/", "_")+".keytab")
		if err := os.WriteFile(keytabs[spn], kt, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The moved service kept its old keys as the previous version.
	hostKeys := keytabKeys(t, keytabs["host/station.example.test"])
	for _, old := range keytabKeys(t, "", oldKT...) {
		found := false
		for _, k := range hostKeys {
			found = found || k.KVNO == 1 && k.EType == old.EType && string(k.Value) == string(old.Value)
		}
		if !found {
			t.Errorf("the kdc.json key (etype %d) is not kept as kvno 1", old.EType)
		}
	}

	key, csr := pkitest.NewCSR(t, pki.RSA2048)
	issued, err := st.Issue(context.Background(), nil, "smartcard-logon", csr, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	k, stop := serveKDC(t, st, KDCOptions{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0"})
	defer stop()
	ctx := context.Background()
	addr := k.TCPAddr().String()
	roots, root := caRoots(t, st), pkitest.WritePEM(t, work, "root.pem", caRoot(t, st))
	id := "FILE:" + pkitest.WritePEM(t, work, "alice.pem", issued.Certificate) + "," + pkitest.WritePEM(t, work, "alice.key", key)
	kenv, _, err := mitKinit(t, nil, addr, root, id, "", "alice@EXAMPLE.TEST")
	if err != nil {
		t.Fatal(err)
	}
	for spn, kt := range keytabs {
		out, err := runPeer(t, kenv, "", p[1], "-k", kt, spn+"@EXAMPLE.TEST")
		if err != nil || !strings.Contains(out, "keytab entry valid") {
			t.Errorf("kvno -k %s: %v\n%s", spn, err, out)
		}
	}

	c := &kdc.Client{Realm: "EXAMPLE.TEST", KDC: addr, Certificate: issued.Certificate, Key: key, Roots: roots}
	tgt, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// SPNs match case-insensitively, as in AD.
	for _, spn := range []string{"HTTP/web.example.test", "http/WEB.EXAMPLE.TEST", "HTTP/www.example.test"} {
		cred, err := c.ServiceTicket(ctx, tgt, spn)
		if err != nil {
			t.Fatalf("TGS %s: %v", spn, err)
		}
		part, err := kdc.DecryptTicket(cred.Ticket, keytabKeys(t, keytabs["HTTP/web.example.test"]))
		if err != nil || part.CName.PrincipalNameString() != "alice" {
			t.Fatalf("ticket for %s: %v %v", spn, err, part.CName)
		}
	}
	if _, err := c.ServiceTicket(ctx, tgt, "HTTP/nowhere.example.test"); !isCode(err, kdc.ErrSPrincipalUnknown) {
		t.Errorf("unknown SPN: %v", err)
	}

	// A disabled service account gets no tickets; a disabled user none either.
	if err := dir.SetUserDisabled("svc-web", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServiceTicket(ctx, tgt, "HTTP/web.example.test"); !isCode(err, kdc.ErrSPrincipalUnknown) {
		t.Errorf("disabled service account: %v", err)
	}
	if err := dir.SetUserDisabled("alice", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServiceTicket(ctx, tgt, "host/station.example.test"); !isCode(err, kdc.ErrClientRevoked) {
		t.Errorf("TGS for a disabled user: %v", err)
	}
	if _, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{}); !isCode(err, kdc.ErrClientRevoked) {
		t.Errorf("PKINIT of a disabled user: %v", err)
	}
	if _, _, err := mitKinit(t, nil, addr, root, id, "", "alice@EXAMPLE.TEST"); err == nil || !strings.Contains(err.Error(), "credentials have been revoked") {
		t.Errorf("kinit of a disabled user: %v", err)
	}
	if err := dir.SetUserDisabled("alice", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PKINIT(ctx, "alice", kdc.PKINITOptions{}); err != nil {
		t.Errorf("PKINIT after enabling: %v", err)
	}
}

func isCode(err error, code int32) bool {
	var re *kdc.RemoteError
	return errors.As(err, &re) && re.Code == code
}

// keytabKeys reads the keys of a keytab file (or of data).
func keytabKeys(t *testing.T, path string, data ...byte) []kdc.Key {
	t.Helper()
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
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
