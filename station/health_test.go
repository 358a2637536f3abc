package station

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for the services' goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveForHealth runs every embedded service on loopback until the test
// ends, and returns the HTTP address and the log.
func serveForHealth(t *testing.T, st *Station) (string, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	st.Log = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]string, 8)
	done := make(chan error, 1)
	go func() {
		done <- st.Serve(ctx, ServeOptions{HTTP: "127.0.0.1:0", LDAP: "127.0.0.1:0", LDAPS: "127.0.0.1:0", KDC: "127.0.0.1:0",
			Ready: func(name, addr string) { addrs <- [2]string{name, addr} }})
	}()
	var httpAddr string
	var all []string
	for range 4 {
		a := <-addrs
		all = append(all, a[1])
		if a[0] == "http" {
			httpAddr = a[1]
		}
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		// Serve has returned: every listener is closed.
		for _, a := range all {
			if c, err := net.Dial("tcp", a); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after serve returned", a)
			}
		}
	})
	return httpAddr, logs
}

func getHealth(t *testing.T, addr string) (int, *Health) {
	t.Helper()
	resp, err := http.Get("http://" + addr + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, &h
}

// TestHealth: every service is reported serving with its address, the
// databases open, the CA and CRL dates; an overdue CRL makes it 503 and
// is warned about in the log; after shutdown the listeners are closed.
func TestHealth(t *testing.T) {
	st, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.PublishCRL(nil); err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	st.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	addr, logs := serveForHealth(t, st)

	code, h := getHealth(t, addr)
	if code != http.StatusOK || h.Status != "ok" || len(h.Problems) != 0 {
		t.Fatalf("health %d %s %v", code, h.Status, h.Problems)
	}
	got := map[string]ServiceHealth{}
	for _, s := range h.Services {
		got[s.Name+"/"+s.Network] = s
	}
	for _, want := range []string{"http/tcp", "ldap/tcp", "ldaps/tcp", "kdc/tcp", "kdc/udp"} {
		s, ok := got[want]
		if !ok || s.State != StateServing {
			t.Errorf("%s: %+v", want, s)
			continue
		}
		if _, _, err := net.SplitHostPort(s.Addr); err != nil || strings.HasSuffix(s.Addr, ":0") {
			t.Errorf("%s: address %q", want, s.Addr)
		}
	}
	if got["http/tcp"].Addr != addr {
		t.Errorf("http address %s, serving on %s", got["http/tcp"].Addr, addr)
	}
	dbs := map[string]string{}
	for _, d := range h.Databases {
		dbs[d.Name] = d.State
	}
	if dbs["ca"] != "open" || dbs["directory"] != "open" {
		t.Errorf("databases: %+v", h.Databases)
	}
	chain, _ := st.CAChain()
	if !h.CA.NotAfter.Equal(chain[0].NotAfter) || h.CA.Expired {
		t.Errorf("CA: %+v", h.CA)
	}
	if h.CRL.Overdue || h.CRL.NextUpdate.IsZero() || h.CRL.Number == "" {
		t.Errorf("CRL: %+v", h.CRL)
	}
	log := logs.String()
	for _, want := range []string{"msg=ready", "http_tcp=" + addr, "kdc_udp=127.0.0.1:", "kdc_tcp=127.0.0.1:", "ldaps_tcp=127.0.0.1:"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Count(log, "msg=ready") != 1 || strings.Contains(log, "overdue") {
		t.Errorf("log:\n%s", log)
	}

	// The clock past the CRL's next update.
	skew.Store(int64(time.Until(h.CRL.NextUpdate) + time.Hour))
	code, h = getHealth(t, addr)
	if code != http.StatusServiceUnavailable || h.Status != "unhealthy" || !h.CRL.Overdue || len(h.Problems) != 1 || !strings.Contains(h.Problems[0], "overdue") {
		t.Errorf("overdue CRL: %d %+v", code, h)
	}
	// Only GET and HEAD.
	resp, err := http.Post("http://"+addr+HealthPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /health: %s", resp.Status)
	}
	// The CA files are still served next to it.
	resp, err = http.Get("http://" + addr + "/ca.crl")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ca.crl: %s", resp.Status)
	}
}

// TestServeWarnsOverdueCRL: serve starts with an overdue CRL, says so in
// the log, and health reports it.
func TestServeWarnsOverdueCRL(t *testing.T) {
	st, err := Init(t.TempDir(), InitOptions{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	crl, err := st.PublishCRL(nil)
	if err != nil {
		t.Fatal(err)
	}
	later := crl.NextUpdate.Add(time.Minute)
	st.Now = func() time.Time { return later }
	addr, logs := serveForHealth(t, st)
	if log := logs.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "the CRL is overdue") {
		t.Errorf("no warning about the overdue CRL:\n%s", log)
	}
	if code, h := getHealth(t, addr); code != http.StatusServiceUnavailable || !h.CRL.Overdue {
		t.Errorf("health %d %+v", code, h.CRL)
	}
}
