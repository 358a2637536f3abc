// Package ldapbench is a load generator for LDAP servers: N connections,
// each binding once and then sending one search at a time, with filters
// made from a template and random indexes, for a fixed time. It reports
// searches per second and latency percentiles. It works against any LDAP
// v3 server (the embedded one, OpenLDAP, Active Directory).
//
// The client side is lean on purpose (requests pre-encoded, responses
// framed and skimmed without decoding entries), so that on a machine it
// shares with the server it takes as little CPU from it as it can; the
// same client drives every server it is compared against.
package ldapbench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// Config is one benchmark run.
type Config struct {
	// URL is ldap://host:port or ldaps://host:port.
	URL string
	// StartTLS upgrades ldap:// connections; TLS verifies with RootCAs
	// (nil: the system's).
	StartTLS bool
	TLS      *tls.Config
	// BindDN and Password: a simple bind on every connection (no BindDN:
	// anonymous).
	BindDN   string
	Password []byte
	// Base is the search base (default: the server's first naming
	// context); the scope is the subtree.
	Base string
	// Filter is a template with one %d (e.g. "(uid=user%d)"), filled with
	// a random index in [0, Range).
	Filter string
	Range  int
	// Attrs are the attributes asked for (default cn and mail).
	Attrs []string
	// Conns is the number of connections (default 16), each with one
	// search outstanding.
	Conns int
	// Duration is how long to measure (default 10 s), after Warmup.
	Duration, Warmup time.Duration
	// Seed makes the index sequence repeatable (0: random).
	Seed uint64
}

// Result is what a run measured.
type Result struct {
	Ops                int64         // searches completed in the measured period
	Errors             int64         // searches that failed
	Empty              int64         // searches that found no entry
	Entries            int64         // entries returned
	Elapsed            time.Duration // the measured period
	OpsPerSec          float64
	P50, P90, P99, Max time.Duration
	// ErrorKinds counts errors by kind (a result code or a network error).
	ErrorKinds map[string]int64
}

func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d searches in %s: %.0f/s  p50 %s  p90 %s  p99 %s  max %s  errors %d  empty %d",
		r.Ops, r.Elapsed.Round(time.Millisecond), r.OpsPerSec, fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.Max), r.Errors, r.Empty)
	if len(r.ErrorKinds) > 0 {
		var kinds []string
		for k, n := range r.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
		}
		slices.Sort(kinds)
		fmt.Fprintf(&b, " (%s)", strings.Join(kinds, ", "))
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}

func (c *Config) defaults() error {
	if c.Conns <= 0 {
		c.Conns = 16
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if len(c.Attrs) == 0 {
		c.Attrs = []string{"cn", "mail"}
	}
	if c.Range <= 0 {
		return errors.New("ldapbench: the index range must be positive")
	}
	if strings.Count(c.Filter, "%d") != 1 || strings.Count(c.Filter, "%") != 1 {
		return fmt.Errorf("ldapbench: the filter template %q needs exactly one %%d (and no other %%)", c.Filter)
	}
	if _, err := ldap.CompileFilter(fmt.Sprintf(c.Filter, 0)); err != nil {
		return fmt.Errorf("ldapbench: filter %q: %v", c.Filter, err)
	}
	return nil
}

// request builds pre-encoded SearchRequest bodies ([APPLICATION 3]) by
// index; the message envelope is added per send.
type requests struct {
	cfg   *Config
	cache [][]byte // by index, when the range is small enough
	mu    sync.Mutex
}

const maxCached = 2_000_000

func (r *requests) get(i int) []byte {
	if r.cache != nil {
		r.mu.Lock()
		b := r.cache[i]
		r.mu.Unlock()
		if b != nil {
			return b
		}
	}
	b := r.build(i)
	if r.cache != nil {
		r.mu.Lock()
		r.cache[i] = b
		r.mu.Unlock()
	}
	return b
}

func (r *requests) build(i int) []byte {
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "")
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, r.cfg.Base, ""))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(ldap.ScopeWholeSubtree), ""))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(ldap.NeverDerefAliases), ""))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
	req.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, ""))
	f, _ := ldap.CompileFilter(fmt.Sprintf(r.cfg.Filter, i))
	req.AppendChild(f)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for _, a := range r.cfg.Attrs {
		attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a, ""))
	}
	req.AppendChild(attrs)
	return req.Bytes()
}

// envelope wraps a protocol op in an LDAPMessage with a message ID.
func envelope(buf []byte, id int32, op []byte) []byte {
	idb := []byte{0x02, 4, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	n := len(idb) + len(op)
	buf = append(buf[:0], 0x30)
	buf = appendLen(buf, n)
	buf = append(buf, idb...)
	return append(buf, op...)
}

func appendLen(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// conn is one benchmark connection.
type conn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte
	msg []byte
	id  int32
}

// readMessage reads one LDAPMessage and returns its content (after the
// outer SEQUENCE header).
func (c *conn) readMessage() ([]byte, error) {
	tag, err := c.br.ReadByte()
	if err != nil {
		return nil, err
	}
	if tag != 0x30 {
		return nil, fmt.Errorf("not an LDAPMessage (tag %#x)", tag)
	}
	l0, err := c.br.ReadByte()
	if err != nil {
		return nil, err
	}
	n := int(l0)
	if l0&0x80 != 0 {
		k := int(l0 & 0x7f)
		if k == 0 || k > 4 {
			return nil, errors.New("bad length")
		}
		n = 0
		for i := 0; i < k; i++ {
			b, err := c.br.ReadByte()
			if err != nil {
				return nil, err
			}
			n = n<<8 | int(b)
		}
	}
	if n > 64<<20 {
		return nil, errors.New("response too large")
	}
	if cap(c.msg) < n {
		c.msg = make([]byte, n)
	}
	c.msg = c.msg[:n]
	_, err = io.ReadFull(c.br, c.msg)
	return c.msg, err
}

// skipTLV returns the rest of b after one TLV, and the TLV's tag and
// content.
func skipTLV(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errors.New("short")
	}
	tag = b[0]
	n := int(b[1])
	i := 2
	if b[1]&0x80 != 0 {
		k := int(b[1] & 0x7f)
		if k == 0 || k > 4 || len(b) < 2+k {
			return 0, nil, nil, errors.New("bad length")
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		i += k
	}
	if n < 0 || len(b)-i < n {
		return 0, nil, nil, errors.New("short")
	}
	return tag, b[i : i+n], b[i+n:], nil
}

// ldapResult reads the result code of an LDAPResult body.
func ldapResult(body []byte) (int, error) {
	tag, v, _, err := skipTLV(body)
	if err != nil || tag != 0x0a || len(v) == 0 || len(v) > 4 {
		return 0, errors.New("bad LDAPResult")
	}
	code := 0
	for _, c := range v {
		code = code<<8 | int(c)
	}
	return code, nil
}

// roundTrip sends one request and reads the responses up to the final
// one (for searches: SearchResultDone). It returns the result code and
// the number of entries.
func (c *conn) roundTrip(op []byte) (code int, entries int, err error) {
	c.id++
	if c.id <= 0 {
		c.id = 1
	}
	c.buf = envelope(c.buf, c.id, op)
	if _, err := c.nc.Write(c.buf); err != nil {
		return 0, 0, err
	}
	for {
		m, err := c.readMessage()
		if err != nil {
			return 0, entries, err
		}
		_, _, rest, err := skipTLV(m) // message ID
		if err != nil {
			return 0, entries, err
		}
		tag, body, _, err := skipTLV(rest)
		if err != nil {
			return 0, entries, err
		}
		switch tag {
		case 0x64: // SearchResultEntry
			entries++
		case 0x73: // SearchResultReference
		case 0x61, 0x65, 0x78: // BindResponse, SearchResultDone, ExtendedResponse
			code, err := ldapResult(body)
			return code, entries, err
		default:
			return 0, entries, fmt.Errorf("unexpected response tag %#x", tag)
		}
	}
}

func bindRequest(dn string, pw []byte) []byte {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, ""))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, string(pw), ""))
	return p.Bytes()
}

func startTLSRequest() []byte {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "")
	p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.1466.20037", ""))
	return p.Bytes()
}

func dial(ctx context.Context, cfg *Config) (*conn, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("ldapbench: %q is not an ldap:// or ldaps:// URL", cfg.URL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"ldap": "389", "ldaps": "636"}[u.Scheme])
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	tlsCfg := cfg.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg = tlsCfg.Clone()
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = u.Hostname()
	}
	if u.Scheme == "ldaps" {
		nc = tls.Client(nc, tlsCfg)
	}
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
	if cfg.StartTLS && u.Scheme == "ldap" {
		code, _, err := c.roundTrip(startTLSRequest())
		if err == nil && code != 0 {
			err = fmt.Errorf("StartTLS: result %d (%s)", code, ldap.LDAPResultCodeMap[uint16(code)])
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tls.Client(nc, tlsCfg)
		c.nc, c.br = nc, bufio.NewReaderSize(nc, 64<<10)
	}
	if cfg.BindDN != "" {
		code, _, err := c.roundTrip(bindRequest(cfg.BindDN, cfg.Password))
		if err == nil && code != 0 {
			err = fmt.Errorf("bind as %s: result %d (%s)", cfg.BindDN, code, ldap.LDAPResultCodeMap[uint16(code)])
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// namingContext reads the server's first naming context from the root DSE.
func namingContext(ctx context.Context, cfg *Config) (string, error) {
	c, err := dial(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer c.nc.Close()
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "")
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(ldap.ScopeBaseObject), ""))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, ""))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
	req.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, ""))
	f, _ := ldap.CompileFilter("(objectClass=*)")
	req.AppendChild(f)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "namingContexts", ""))
	req.AppendChild(attrs)
	c.id++
	c.buf = envelope(c.buf, c.id, req.Bytes())
	if _, err := c.nc.Write(c.buf); err != nil {
		return "", err
	}
	base := ""
	for {
		m, err := c.readMessage()
		if err != nil {
			return "", err
		}
		p, err := ber.DecodePacketErr(append([]byte{0x30, 0x84, byte(len(m) >> 24), byte(len(m) >> 16), byte(len(m) >> 8), byte(len(m))}, m...))
		if err != nil || len(p.Children) < 2 {
			return "", errors.New("ldapbench: malformed root DSE response")
		}
		op := p.Children[1]
		switch op.Tag {
		case ldap.ApplicationSearchResultEntry:
			if len(op.Children) == 2 {
				for _, a := range op.Children[1].Children {
					if len(a.Children) == 2 && len(a.Children[1].Children) > 0 && base == "" {
						base = a.Children[1].Children[0].Data.String()
					}
				}
			}
		case ldap.ApplicationSearchResultDone:
			if base == "" {
				return "", errors.New("ldapbench: the server names no naming context; give a base")
			}
			return base, nil
		}
	}
}

type worker struct {
	lat    []time.Duration
	ops    int64
	errs   int64
	empty  int64
	ents   int64
	kinds  map[string]int64
	failed error
}

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Base == "" {
		base, err := namingContext(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		cfg.Base = base
	}
	reqs := &requests{cfg: &cfg}
	if cfg.Range <= maxCached {
		reqs.cache = make([][]byte, cfg.Range)
	}
	// Connect everyone first.
	conns := make([]*conn, cfg.Conns)
	for i := range conns {
		c, err := dial(ctx, &cfg)
		if err != nil {
			for _, c := range conns[:i] {
				c.nc.Close()
			}
			return nil, fmt.Errorf("ldapbench: connection %d: %w", i+1, err)
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.nc.Close()
		}
	}()
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	workers := make([]*worker, cfg.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	for i, c := range conns {
		w := &worker{kinds: map[string]int64{}, lat: make([]time.Duration, 0, 1<<16)}
		workers[i] = w
		wg.Add(1)
		go func(c *conn, w *worker, rng *rand.Rand) {
			defer wg.Done()
			for ctx.Err() == nil {
				op := reqs.get(rng.IntN(cfg.Range))
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				code, n, err := c.roundTrip(op)
				t1 := time.Now()
				if t0.Before(measureFrom) {
					if err != nil {
						w.failed = err
						return
					}
					continue
				}
				switch {
				case err != nil:
					w.errs++
					w.kinds["network: "+err.Error()]++
					w.failed = err
					return
				case code != 0:
					w.errs++
					w.kinds[fmt.Sprintf("result %d (%s)", code, ldap.LDAPResultCodeMap[uint16(code)])]++
				default:
					w.ops++
					w.ents += int64(n)
					if n == 0 {
						w.empty++
					}
				}
				w.lat = append(w.lat, t1.Sub(t0))
			}
		}(c, w, rand.New(rand.NewPCG(seed, uint64(i))))
	}
	wg.Wait()
	elapsed := min(time.Since(measureFrom), cfg.Duration)
	res := &Result{Elapsed: elapsed, ErrorKinds: map[string]int64{}}
	var all []time.Duration
	var firstErr error
	for _, w := range workers {
		res.Ops += w.ops
		res.Errors += w.errs
		res.Empty += w.empty
		res.Entries += w.ents
		for k, n := range w.kinds {
			res.ErrorKinds[k] += n
		}
		all = append(all, w.lat...)
		if w.failed != nil && firstErr == nil {
			firstErr = w.failed
		}
	}
	if res.Ops == 0 && firstErr != nil {
		return res, fmt.Errorf("ldapbench: %w", firstErr)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	res.P50, res.P90, res.P99 = pct(0.50), pct(0.90), pct(0.99)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	if elapsed > 0 {
		res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	}
	return res, ctx.Err()
}
