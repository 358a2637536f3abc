package station

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

// HealthPath is where the HTTP service reports the station's health.
const HealthPath = "/health"

// Service states in a health report.
const (
	StateStarting = "starting"
	StateServing  = "serving"
	StateStopped  = "stopped"
	StateFailed   = "failed"
)

// Health is what GET /health answers (as JSON): the embedded services,
// the CA certificate, the CRL and the open databases. It carries no
// secrets: names, addresses, dates and states only.
type Health struct {
	// Status is "ok", or "unhealthy" with the reasons in Problems.
	Status    string           `json:"status"`
	Problems  []string         `json:"problems,omitempty"`
	Time      time.Time        `json:"time"`
	Services  []ServiceHealth  `json:"services"`
	CA        CAHealth         `json:"ca"`
	CRL       CRLHealth        `json:"crl"`
	Databases []DatabaseHealth `json:"databases"`
	// KDCMode is [kdc] mode: with "external", no KDC runs here.
	KDCMode string `json:"kdc_mode"`
}

// ServiceHealth is one listener of an embedded service.
type ServiceHealth struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Addr    string `json:"addr"`
	State   string `json:"state"`
}

// CAHealth is the CA certificate's validity.
type CAHealth struct {
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	Expired  bool      `json:"expired"`
}

// CRLHealth is the published CRL's freshness.
type CRLHealth struct {
	Number     string    `json:"number,omitempty"`
	NextUpdate time.Time `json:"next_update"`
	Overdue    bool      `json:"overdue"`
	Error      string    `json:"error,omitempty"`
}

// DatabaseHealth is one database of the data directory the services use.
type DatabaseHealth struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	State string `json:"state"`
}

// health tracks the running services for Health reports.
type health struct {
	s  *Station
	ca *x509.Certificate

	mu        sync.Mutex
	listeners []ServiceHealth
	dbs       []healthDB
	kdcMode   string
}

type healthDB struct {
	name, path string
	probe      func() error
}

func newHealth(s *Station, ca *x509.Certificate) *health {
	return &health{s: s, ca: ca, kdcMode: s.Config.KDC.Mode}
}

// add records a service's listeners, in the starting state.
func (h *health) add(svc *service) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range svc.endpoints() {
		h.listeners = append(h.listeners, ServiceHealth{Name: svc.name, Network: e[0], Addr: e[1], State: StateStarting})
	}
}

// set changes the state of every listener of a service.
func (h *health) set(name, state string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.listeners {
		if h.listeners[i].Name == name {
			h.listeners[i].State = state
		}
	}
}

// databases records the databases the services use (the CA database
// and the embedded directory, for LDAP and the KDC), already open by then.
func (h *health) databases(s *Station, opts ServeOptions) {
	if opts.LDAP == "" && opts.LDAPS == "" && opts.KDC == "" {
		return
	}
	var dbs []healthDB
	if db, err := s.CADB(); err == nil {
		dbs = append(dbs, healthDB{"ca", caDBFile, func() error { _, err := db.SerialExists(big.NewInt(1)); return err }})
	}
	if !s.Config.Directory.External() {
		if d, err := s.Directory(); err == nil {
			dbs = append(dbs, healthDB{"directory", dirDBFile, func() error { _, err := d.Get(d.BaseDN()); return err }})
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dbs = append(h.dbs, dbs...)
}

// report checks everything now.
func (h *health) report() *Health {
	now := h.s.Now()
	r := &Health{Time: now.UTC()}
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	h.mu.Lock()
	r.Services = append([]ServiceHealth(nil), h.listeners...)
	dbs := append([]healthDB(nil), h.dbs...)
	h.mu.Unlock()
	sort.SliceStable(r.Services, func(i, j int) bool { return r.Services[i].Name < r.Services[j].Name })
	for _, svc := range r.Services {
		if svc.State != StateServing {
			problem("%s/%s on %s is %s", svc.Name, svc.Network, svc.Addr, svc.State)
		}
	}
	r.KDCMode = h.kdcMode
	r.CA = CAHealth{Subject: h.ca.Subject.String(), NotAfter: h.ca.NotAfter.UTC(), Expired: now.After(h.ca.NotAfter)}
	if r.CA.Expired {
		problem("the CA certificate expired on %s", r.CA.NotAfter.Format(time.RFC3339))
	}
	r.CRL = h.crl(now)
	if r.CRL.Error != "" {
		problem("CRL: %s", r.CRL.Error)
	} else if r.CRL.Overdue {
		problem("the CRL is overdue since %s (scstation ca crl)", r.CRL.NextUpdate.Format(time.RFC3339))
	}
	for _, db := range dbs {
		st := "open"
		if err := db.probe(); err != nil {
			st = "error"
			problem("database %s cannot be read", db.name)
		}
		r.Databases = append(r.Databases, DatabaseHealth{Name: db.name, Path: db.path, State: st})
	}
	r.Status = "ok"
	if len(r.Problems) > 0 {
		r.Status = "unhealthy"
	}
	return r
}

// crl reads and checks the published CRL.
func (h *health) crl(now time.Time) CRLHealth {
	der, err := os.ReadFile(h.s.CRLPath())
	if errors.Is(err, os.ErrNotExist) {
		return CRLHealth{Error: "none published (scstation ca crl)"}
	}
	if err != nil {
		return CRLHealth{Error: "unreadable"}
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return CRLHealth{Error: "not a CRL"}
	}
	if err := crl.CheckSignatureFrom(h.ca); err != nil {
		return CRLHealth{Error: "not signed by the CA"}
	}
	c := CRLHealth{NextUpdate: crl.NextUpdate.UTC(), Overdue: !now.Before(crl.NextUpdate)}
	if crl.Number != nil {
		c.Number = crl.Number.String()
	}
	return c
}

// handler serves HealthPath and hands everything else to next.
func (h *health) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != HealthPath {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rep := h.report()
		body, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if rep.Status != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if r.Method == http.MethodGet {
			w.Write(append(body, '\n'))
		}
	})
}

// endpoints are a service's (network, address) pairs.
func (svc *service) endpoints() [][2]string {
	e := [][2]string{{"tcp", svc.addr}}
	if svc.udpAddr != "" {
		e = append(e, [2]string{"udp", svc.udpAddr})
	}
	return e
}

// logReady logs one line with every listening address once all services
// run, and warns about what the health report would call a problem in
// the CA certificate or the CRL.
func (h *health) logReady(services []*service) {
	var attrs []any
	for _, svc := range services {
		for _, e := range svc.endpoints() {
			attrs = append(attrs, svc.name+"_"+e[0], e[1])
		}
	}
	h.s.Log.Info("ready", attrs...)
	now := h.s.Now()
	if now.After(h.ca.NotAfter) {
		h.s.Log.Warn("the CA certificate has expired", "not_after", h.ca.NotAfter.UTC())
	}
	switch c := h.crl(now); {
	case c.Error != "":
		h.s.Log.Warn("no usable CRL", "problem", c.Error)
	case c.Overdue:
		h.s.Log.Warn("the CRL is overdue: run scstation ca crl", "next_update", c.NextUpdate)
	}
}
