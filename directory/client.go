package directory

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// The LDAP client: the Directory API over go-ldap, for the embedded server,
// OpenLDAP and Active Directory. Every filter is built from the configured
// (checked) attribute names and values escaped with ldap.EscapeFilter, so
// a name cannot change what is searched for. Listings use the paged
// results control (1.2.840.113556.1.4.319). Referrals and search
// continuation references are reported (ReferralError), never followed.

// AttributeMap names the attributes and classes a directory uses. Zero
// fields take the profile's value (ClientConfig.Profile).
type AttributeMap struct {
	// UserFilter and GroupFilter select users and groups (RFC 4515
	// filters from the configuration; they are checked, then ANDed with
	// the escaped assertions).
	UserFilter  string `toml:"user_filter"`
	GroupFilter string `toml:"group_filter"`
	// Login is the login name (sAMAccountName on AD, uid on OpenLDAP).
	Login string `toml:"login"`
	UPN   string `toml:"upn"`
	Mail  string `toml:"mail"`
	// CommonName, DisplayName, GivenName and Surname are the names
	// search as you type looks at.
	CommonName  string `toml:"common_name"`
	DisplayName string `toml:"display_name"`
	GivenName   string `toml:"given_name"`
	Surname     string `toml:"surname"`
	// SID is the security identifier ("-": none, as on OpenLDAP).
	SID string `toml:"sid"`
	// GUID is the entry's unique ID: objectGUID (binary) or entryUUID.
	GUID    string `toml:"guid"`
	Created string `toml:"created"`
	// Certificate is where certificates are published:
	// userCertificate;binary (RFC 4523), or userCertificate on AD, where
	// it is an octet string.
	Certificate string `toml:"certificate"`
	// AltSecurityIdentities holds explicit certificate mappings ("-":
	// none).
	AltSecurityIdentities string `toml:"alt_security_identities"`
	// Member is the group's member attribute; MemberOf the back link on
	// members ("-": the directory keeps none, as OpenLDAP without the
	// memberof overlay; groups are then searched).
	Member    string `toml:"member"`
	MemberOf  string `toml:"member_of"`
	GroupName string `toml:"group_name"`
	// Description is the group's description.
	Description string `toml:"description"`
	// AccountControl is userAccountControl, whose ACCOUNTDISABLE bit is
	// User.Disabled ("-": none, as on OpenLDAP).
	AccountControl string `toml:"account_control"`
}

// Profiles of AttributeMap.
const (
	// ProfileAD is Active Directory: person users by sAMAccountName,
	// objectSid and objectGUID, memberOf.
	ProfileAD = "ad"
	// ProfileOpenLDAP is OpenLDAP with inetOrgPerson users by uid and
	// userPrincipalName from the upnPrincipal auxiliary class
	// (OpenLDAPSchema), groupOfNames groups, no memberOf.
	ProfileOpenLDAP = "openldap"
	// ProfileEmbedded is the station's own server.
	ProfileEmbedded = "embedded"
)

// Profile returns the attribute map of a profile.
func Profile(name string) (AttributeMap, error) {
	switch strings.ToLower(name) {
	case ProfileAD, "", "activedirectory", "active-directory":
		return AttributeMap{
			UserFilter: "(&(objectCategory=person)(objectClass=user))", GroupFilter: "(objectClass=group)",
			Login: "sAMAccountName", UPN: "userPrincipalName", Mail: "mail",
			CommonName: "cn", DisplayName: "displayName", GivenName: "givenName", Surname: "sn",
			SID: "objectSid", GUID: "objectGUID", Created: "whenCreated",
			Certificate: "userCertificate", AltSecurityIdentities: "altSecurityIdentities",
			Member: "member", MemberOf: "memberOf", GroupName: "cn", Description: "description",
			AccountControl: "userAccountControl",
		}, nil
	case ProfileOpenLDAP:
		return AttributeMap{
			UserFilter: "(objectClass=inetOrgPerson)", GroupFilter: "(objectClass=groupOfNames)",
			Login: "uid", UPN: "userPrincipalName", Mail: "mail",
			CommonName: "cn", DisplayName: "displayName", GivenName: "givenName", Surname: "sn",
			SID: "-", GUID: "entryUUID", Created: "createTimestamp",
			Certificate: "userCertificate;binary", AltSecurityIdentities: "-",
			Member: "member", MemberOf: "-", GroupName: "cn", Description: "description",
			AccountControl: "-",
		}, nil
	case ProfileEmbedded:
		return AttributeMap{
			UserFilter: "(objectClass=user)", GroupFilter: "(|(objectClass=group)(objectClass=groupOfNames))",
			Login: "sAMAccountName", UPN: "userPrincipalName", Mail: "mail",
			CommonName: "cn", DisplayName: "displayName", GivenName: "givenName", Surname: "sn",
			SID: "objectSid", GUID: "objectGUID", Created: "createTimestamp",
			Certificate: "userCertificate;binary", AltSecurityIdentities: "altSecurityIdentities",
			Member: "member", MemberOf: "memberOf", GroupName: "cn", Description: "description",
			AccountControl: "userAccountControl",
		}, nil
	}
	return AttributeMap{}, fmt.Errorf("directory: unknown profile %q (want ad, openldap or embedded)", name)
}

// ClientConfig configures a Client. The bind password comes from an
// environment variable or a file, never from the configuration itself.
type ClientConfig struct {
	// URLs are tried in order: ldap://host[:389] or ldaps://host[:636].
	URLs []string `toml:"urls"`
	// StartTLS upgrades ldap:// connections before binding.
	StartTLS bool `toml:"start_tls"`
	// CAFile is a PEM bundle of the CAs trusted for LDAPS and StartTLS
	// (default: the system's); RootCAs, when set, is used instead.
	CAFile  string         `toml:"ca_file"`
	RootCAs *x509.CertPool `toml:"-"`
	// ServerName overrides the name checked in the server's certificate
	// (default: the URL's host).
	ServerName string `toml:"server_name"`
	// BindDN and its password (PasswordEnv names an environment variable,
	// PasswordFile a file whose first line is the password). No BindDN:
	// anonymous.
	BindDN       string `toml:"bind_dn"`
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`
	// ClientCert and ClientKey are PEM files of a client certificate (its
	// chain may follow) and its key; Certificates, when set, is used
	// instead. With one and no BindDN the client binds with SASL
	// EXTERNAL, which needs ldaps:// or StartTLS: the server takes the
	// identity from the certificate.
	ClientCert   string            `toml:"client_cert"`
	ClientKey    string            `toml:"client_key"`
	Certificates []tls.Certificate `toml:"-"`
	// AllowInsecureBind permits a password bind without TLS to a host
	// that is not loopback.
	AllowInsecureBind bool `toml:"allow_insecure_bind"`
	// BaseDN is the naming context; UserBase and GroupBase narrow the
	// searches for users and groups (default BaseDN).
	BaseDN    string `toml:"base_dn"`
	UserBase  string `toml:"user_base"`
	GroupBase string `toml:"group_base"`
	// Profile is ad (default), openldap or embedded; Attributes override
	// single names.
	Profile    string       `toml:"profile"`
	Attributes AttributeMap `toml:"attributes"`
	// PageSize is the paged-results page size (default 500; AD caps pages
	// at 1000).
	PageSize int `toml:"page_size"`
	// Timeout bounds connecting and each request (default 15 s).
	Timeout time.Duration `toml:"timeout"`
}

// Client is the Directory over LDAP. It keeps one connection (go-ldap
// multiplexes concurrent requests on it) and reconnects when it breaks.
type Client struct {
	cfg      ClientConfig
	attrs    AttributeMap
	password []byte
	urls     []*url.URL

	mu   sync.Mutex
	conn *ldap.Conn
}

var _ Directory = (*Client)(nil)

// ReferralError is a referral or continuation reference from the server:
// the answer is elsewhere, and the client does not follow it.
type ReferralError struct {
	URLs []string
}

func (e *ReferralError) Error() string {
	return "directory: the server referred to " + strings.Join(e.URLs, ", ") + " (referrals are not followed)"
}

// Unwrap makes errors.Is(err, ErrReferral) true.
func (e *ReferralError) Unwrap() error { return ErrReferral }

var attrNameRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)(;[A-Za-z0-9-]+)*$`)

func (m *AttributeMap) fill(p AttributeMap) error {
	fields := []struct {
		name string
		v    *string
		def  string
	}{
		{"user_filter", &m.UserFilter, p.UserFilter}, {"group_filter", &m.GroupFilter, p.GroupFilter},
		{"login", &m.Login, p.Login}, {"upn", &m.UPN, p.UPN}, {"mail", &m.Mail, p.Mail},
		{"common_name", &m.CommonName, p.CommonName}, {"display_name", &m.DisplayName, p.DisplayName},
		{"given_name", &m.GivenName, p.GivenName}, {"surname", &m.Surname, p.Surname},
		{"sid", &m.SID, p.SID}, {"guid", &m.GUID, p.GUID}, {"created", &m.Created, p.Created},
		{"certificate", &m.Certificate, p.Certificate}, {"alt_security_identities", &m.AltSecurityIdentities, p.AltSecurityIdentities},
		{"member", &m.Member, p.Member}, {"member_of", &m.MemberOf, p.MemberOf},
		{"group_name", &m.GroupName, p.GroupName}, {"description", &m.Description, p.Description},
		{"account_control", &m.AccountControl, p.AccountControl},
	}
	for _, f := range fields {
		if *f.v == "" {
			*f.v = f.def
		}
		if *f.v == "-" {
			switch f.name {
			case "sid", "alt_security_identities", "member_of", "guid", "created", "display_name", "given_name", "surname", "description", "account_control":
				continue
			}
			return fmt.Errorf("directory: attribute %s is required", f.name)
		}
		if strings.HasSuffix(f.name, "filter") {
			if _, err := ldap.CompileFilter(*f.v); err != nil {
				return fmt.Errorf("directory: %s %q: %v", f.name, *f.v, err)
			}
			continue
		}
		if !attrNameRE.MatchString(*f.v) {
			return fmt.Errorf("directory: %s %q is not an attribute description", f.name, *f.v)
		}
	}
	return nil
}

// has says whether an optional attribute is mapped.
func has(a string) bool { return a != "" && a != "-" }

// NewClient checks the configuration, reads the bind password, connects
// and binds: a configuration that cannot work fails here.
func NewClient(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("directory: no LDAP URL")
	}
	c := &Client{cfg: cfg}
	for _, s := range cfg.URLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
			return nil, fmt.Errorf("directory: %q is not an ldap:// or ldaps:// URL", s)
		}
		if u.Port() == "" {
			port := "389"
			if u.Scheme == "ldaps" {
				port = "636"
			}
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
		c.urls = append(c.urls, u)
	}
	if cfg.BaseDN == "" {
		return nil, errors.New("directory: no base DN")
	}
	for _, dn := range []string{cfg.BaseDN, cfg.UserBase, cfg.GroupBase, cfg.BindDN} {
		if dn != "" {
			if _, err := ldap.ParseDN(dn); err != nil {
				return nil, fmt.Errorf("directory: %q is not a DN: %v", dn, err)
			}
		}
	}
	if c.cfg.UserBase == "" {
		c.cfg.UserBase = cfg.BaseDN
	}
	if c.cfg.GroupBase == "" {
		c.cfg.GroupBase = cfg.BaseDN
	}
	if c.cfg.PageSize <= 0 {
		c.cfg.PageSize = 500
	}
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = 15 * time.Second
	}
	p, err := Profile(cfg.Profile)
	if err != nil {
		return nil, err
	}
	c.attrs = cfg.Attributes
	if err := c.attrs.fill(p); err != nil {
		return nil, err
	}
	if cfg.BindDN != "" {
		if c.password, err = readSecret(cfg.PasswordEnv, cfg.PasswordFile); err != nil {
			return nil, err
		}
	} else if cfg.PasswordEnv != "" || cfg.PasswordFile != "" {
		return nil, errors.New("directory: a bind password without a bind DN")
	}
	if (cfg.ClientCert == "") != (cfg.ClientKey == "") {
		return nil, errors.New("directory: a client certificate needs both a certificate file and a key file")
	}
	if cfg.ClientCert != "" && len(cfg.Certificates) == 0 {
		kp, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("directory: client certificate: %w", err)
		}
		c.cfg.Certificates = []tls.Certificate{kp}
	}
	if c.external() {
		for _, u := range c.urls {
			if u.Scheme != "ldaps" && !cfg.StartTLS {
				return nil, fmt.Errorf("directory: %s: a certificate bind (SASL EXTERNAL) needs ldaps:// or StartTLS", u.Redacted())
			}
		}
	}
	if cfg.CAFile != "" && cfg.RootCAs == nil {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory: CA file: %w", err)
		}
		c.cfg.RootCAs = x509.NewCertPool()
		if !c.cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory: %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if _, err := c.getConn(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// readSecret reads a password from an environment variable or a file.
func readSecret(env, file string) ([]byte, error) {
	switch {
	case env != "" && file != "":
		return nil, errors.New("directory: give the bind password by environment variable or by file, not both")
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return nil, fmt.Errorf("directory: the environment variable %s holding the bind password is empty", env)
		}
		return []byte(v), nil
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("directory: bind password file: %w", err)
		}
		line, _, _ := bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return nil, fmt.Errorf("directory: the bind password file %s is empty", file)
		}
		return bytes.Clone(line), nil
	}
	return nil, errors.New("directory: a bind DN needs a password (environment variable or file)")
}

// Close ends the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	clear(c.password)
	return nil
}

// ---- connections --------------------------------------------------------------

func (c *Client) tlsConfig(u *url.URL) *tls.Config {
	name := c.cfg.ServerName
	if name == "" {
		name = u.Hostname()
	}
	return &tls.Config{RootCAs: c.cfg.RootCAs, ServerName: name, MinVersion: tls.VersionTLS12, Certificates: c.cfg.Certificates}
}

// external says the client binds with its certificate (SASL EXTERNAL).
func (c *Client) external() bool { return c.cfg.BindDN == "" && len(c.cfg.Certificates) > 0 }

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *Client) getConn(ctx context.Context) (*ldap.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && !c.conn.IsClosing() {
		return c.conn, nil
	}
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	var errs []error
	for _, u := range c.urls {
		conn, err := c.dial(ctx, u)
		if err == nil {
			c.conn = conn
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
		// A refusal of the credentials or of the configuration will be
		// the same elsewhere.
		var le *ldap.Error
		if errors.As(err, &le) && le.ResultCode != ldap.ErrorNetwork && le.ResultCode != ldap.LDAPResultUnavailable && le.ResultCode != ldap.LDAPResultBusy {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (c *Client) dial(ctx context.Context, u *url.URL) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	d := &net.Dialer{}
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("directory: %s: %w", u.Redacted(), err)
	}
	secure := false
	if u.Scheme == "ldaps" {
		tc := tls.Client(nc, c.tlsConfig(u))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("directory: %s: TLS: %w", u.Redacted(), err)
		}
		nc, secure = tc, true
	}
	conn := ldap.NewConn(nc, secure)
	conn.Start()
	conn.SetTimeout(c.cfg.Timeout)
	// Anything still running when ctx ends is cut off.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer func() {
		if stop() {
			nc.SetDeadline(time.Time{})
		}
	}()
	if c.cfg.StartTLS && !secure {
		if err := conn.StartTLS(c.tlsConfig(u)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("directory: %s: StartTLS: %w", u.Redacted(), err)
		}
		secure = true
	}
	if c.cfg.BindDN != "" {
		if !secure && !isLoopbackHost(u.Hostname()) && !c.cfg.AllowInsecureBind {
			conn.Close()
			return nil, fmt.Errorf("directory: %s: a password bind needs TLS (ldaps:// or StartTLS)", u.Redacted())
		}
		if err := conn.Bind(c.cfg.BindDN, string(c.password)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("directory: %s: bind as %s: %w", u.Redacted(), c.cfg.BindDN, err)
		}
	} else if c.external() {
		if !secure {
			conn.Close()
			return nil, fmt.Errorf("directory: %s: a certificate bind (SASL EXTERNAL) needs TLS", u.Redacted())
		}
		if err := conn.ExternalBind(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("directory: %s: SASL EXTERNAL bind: %w", u.Redacted(), err)
		}
	}
	return conn, nil
}

// WhoAmI asks the server who the client is bound as (RFC 4532): "dn:…",
// "u:…", or "" for anonymous.
func (c *Client) WhoAmI(ctx context.Context) (string, error) {
	var id string
	err := c.do(ctx, func(conn *ldap.Conn) error {
		r, err := conn.WhoAmI(nil)
		if err != nil {
			return err
		}
		id = r.AuthzID
		return nil
	})
	return id, err
}

// isNetwork says whether an error broke the connection (worth one retry
// on a new one).
func isNetwork(err error) bool {
	var le *ldap.Error
	return errors.As(err, &le) && (le.ResultCode == ldap.ErrorNetwork || le.ResultCode == ldap.LDAPResultServerDown || le.ResultCode == ldap.LDAPResultUnavailable)
}

// do runs an operation, reconnecting once when the connection broke.
// Every operation is idempotent (adding a value that is there is success).
func (c *Client) do(ctx context.Context, op func(*ldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		conn, err := c.getConn(ctx)
		if err != nil {
			return err
		}
		err = op(conn)
		// A connection the server dropped (idle timeout, restart) may
		// surface as any error: retry once when it is closing.
		if err == nil || attempt > 0 || ctx.Err() != nil || !isNetwork(err) && !conn.IsClosing() {
			return c.convert(err)
		}
		c.mu.Lock()
		if c.conn == conn {
			c.conn.Close()
			c.conn = nil
		}
		c.mu.Unlock()
	}
}

// convert maps go-ldap errors to the package's.
func (c *Client) convert(err error) error {
	if err == nil {
		return nil
	}
	var le *ldap.Error
	if !errors.As(err, &le) {
		return err
	}
	if le.ResultCode == ldap.LDAPResultReferral {
		return &ReferralError{URLs: referralURLs(le.Packet)}
	}
	if le.ResultCode >= ldap.ErrorNetwork {
		return fmt.Errorf("directory: LDAP: %w", err)
	}
	msg := ""
	if le.Err != nil {
		msg = le.Err.Error()
	}
	if msg == "" {
		msg = ldap.LDAPResultCodeMap[le.ResultCode]
	}
	return &Error{Code: ResultCode(le.ResultCode), Message: "LDAP: " + msg, Matched: le.MatchedDN, Err: le}
}

// referralURLs reads the referral [3] of an LDAPResult.
func referralURLs(p *ber.Packet) []string {
	if p == nil || len(p.Children) < 2 {
		return nil
	}
	var out []string
	for _, ch := range p.Children[1].Children {
		if ch.ClassType == ber.ClassContext && ch.Tag == 3 {
			for _, u := range ch.Children {
				if u.Data != nil {
					out = append(out, u.Data.String())
				} else if s, ok := u.Value.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// ---- searching -------------------------------------------------------------------

type searchSpec struct {
	base   string
	scope  int
	filter string
	attrs  []string
	// limit: at most this many entries (0: all, paged).
	limit int
}

// search runs one search, paging when spec.limit is 0. It returns the
// entries and the continuation references seen.
func (c *Client) search(ctx context.Context, spec searchSpec) ([]*ldap.Entry, []string, error) {
	var entries []*ldap.Entry
	var refs []string
	err := c.do(ctx, func(conn *ldap.Conn) error {
		entries, refs = nil, nil
		var paging *ldap.ControlPaging
		if spec.limit <= 0 && spec.scope != ldap.ScopeBaseObject {
			paging = ldap.NewControlPaging(uint32(c.cfg.PageSize))
		}
		for {
			req := ldap.NewSearchRequest(spec.base, spec.scope, ldap.NeverDerefAliases, max(spec.limit, 0), int(c.cfg.Timeout/time.Second), false, spec.filter, spec.attrs, nil)
			if paging != nil {
				req.Controls = []ldap.Control{paging}
			}
			pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			res := conn.SearchAsync(pctx, req, 64)
			var cookie []byte
			for res.Next() {
				if e := res.Entry(); e != nil {
					entries = append(entries, e)
				}
				if r := res.Referral(); r != "" {
					refs = append(refs, r)
				}
				if ctl := ldap.FindControl(res.Controls(), ldap.ControlTypePaging); ctl != nil {
					if pc, ok := ctl.(*ldap.ControlPaging); ok {
						cookie = pc.Cookie
					}
				}
			}
			err := res.Err()
			cerr := pctx.Err()
			cancel()
			if err == nil && cerr != nil {
				// SearchAsync reports a cancelled context as success.
				if ctx.Err() != nil {
					return ctxError(ctx.Err())
				}
				return &Error{Code: ResultTimeLimitExceeded, Message: "LDAP search timed out"}
			}
			if err != nil {
				if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && spec.limit > 0 {
					return nil // as many as asked for
				}
				return err
			}
			if paging == nil || len(cookie) == 0 {
				return nil
			}
			paging.SetCookie(cookie)
		}
	})
	return entries, refs, err
}

// filterAnd combines a configured filter with assertions built by eq
// and prefix.
func filterAnd(parts ...string) string {
	var b strings.Builder
	b.WriteString("(&")
	for _, p := range parts {
		b.WriteString(p)
	}
	b.WriteString(")")
	return b.String()
}

// eqFilter is (attr=value), the value escaped. attr is a checked name.
func eqFilter(attr, value string) string {
	return "(" + baseAttr(attr) + "=" + ldap.EscapeFilter(value) + ")"
}

// prefixFilter is (attr=value*), the value escaped.
func prefixFilter(attr, value string) string {
	return "(" + baseAttr(attr) + "=" + ldap.EscapeFilter(value) + "*)"
}

// baseAttr drops options (userCertificate;binary → userCertificate).
func baseAttr(a string) string {
	n, _, _ := strings.Cut(a, ";")
	return n
}

// rawValues returns the values of an attribute, matching the name
// case-insensitively and ignoring options (a server may return
// userCertificate;binary for userCertificate) and AD's ranges.
func rawValues(e *ldap.Entry, attr string) [][]byte {
	if !has(attr) {
		return nil
	}
	want := baseAttr(attr)
	var out [][]byte
	for _, a := range e.Attributes {
		if strings.EqualFold(baseAttr(a.Name), want) {
			out = append(out, a.ByteValues...)
		}
	}
	return out
}

func firstValue(e *ldap.Entry, attr string) string {
	if v := rawValues(e, attr); len(v) > 0 {
		return string(v[0])
	}
	return ""
}

func stringValues(e *ldap.Entry, attr string) []string {
	vals := rawValues(e, attr)
	if len(vals) == 0 {
		return nil
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

func optional(names ...string) []string {
	var out []string
	for _, n := range names {
		if has(n) {
			out = append(out, n)
		}
	}
	return out
}

func (c *Client) userAttrs() []string {
	m := c.attrs
	return optional(m.Login, m.UPN, m.Mail, m.CommonName, m.DisplayName, m.GivenName, m.Surname, m.SID, m.GUID, m.Created, m.Certificate, m.AltSecurityIdentities, m.MemberOf, m.AccountControl)
}

func (c *Client) groupAttrs() []string {
	m := c.attrs
	return optional(m.GroupName, m.Description, m.Member, m.SID, m.GUID)
}

func (c *Client) toUser(e *ldap.Entry) *User {
	m := c.attrs
	u := &User{
		DN: e.DN, Name: firstValue(e, m.Login), UPN: firstValue(e, m.UPN), Mail: firstValue(e, m.Mail),
		DisplayName: firstValue(e, m.DisplayName), GivenName: firstValue(e, m.GivenName), Surname: firstValue(e, m.Surname),
		Certificates: rawValues(e, m.Certificate), Groups: stringValues(e, m.MemberOf),
		AltSecurityIdentities: stringValues(e, m.AltSecurityIdentities),
		Disabled:              accountDisabled(firstValue(e, m.AccountControl)),
	}
	if u.DisplayName == "" {
		// Many OpenLDAP entries have a cn (inetOrgPerson needs one) and
		// no displayName: the cn is then the person's name.
		u.DisplayName = firstValue(e, m.CommonName)
	}
	if sid := rawValues(e, m.SID); len(sid) > 0 {
		if s, err := SIDString(sid[0]); err == nil {
			u.SID = s
		} else if bytes.HasPrefix(sid[0], []byte("S-1-")) {
			u.SID = string(sid[0])
		}
	}
	if g := rawValues(e, m.GUID); len(g) > 0 {
		if len(g[0]) == 16 {
			u.GUID = GUIDString(g[0])
		} else {
			u.GUID = string(g[0])
		}
	}
	if t, err := parseGeneralizedTime(firstValue(e, m.Created)); err == nil {
		u.Created = t
	}
	return u
}

func (c *Client) toGroup(e *ldap.Entry) *Group {
	m := c.attrs
	g := &Group{DN: e.DN, Name: firstValue(e, m.GroupName), Description: firstValue(e, m.Description), Members: stringValues(e, m.Member)}
	if sid := rawValues(e, m.SID); len(sid) > 0 {
		g.SID, _ = SIDString(sid[0])
	}
	if v := rawValues(e, m.GUID); len(v) > 0 {
		if len(v[0]) == 16 {
			g.GUID = GUIDString(v[0])
		} else {
			g.GUID = string(v[0])
		}
	}
	return g
}

// looksLikeDN says whether a name is meant as a DN.
func looksLikeDN(name string) bool {
	if !strings.Contains(name, "=") {
		return false
	}
	d, err := ldap.ParseDN(name)
	if err != nil || len(d.RDNs) == 0 {
		return false
	}
	for _, r := range d.RDNs {
		for _, a := range r.Attributes {
			if strings.Contains(a.Type, ";") || !attrNameRE.MatchString(a.Type) {
				return false
			}
		}
	}
	return true
}

// lookup finds the one entry of a kind by DN, or by an attribute value.
// notFound is the error for none.
func (c *Client) lookup(ctx context.Context, name, kindFilter, base, attr string, attrs []string, notFound error, what string) (*ldap.Entry, error) {
	if name == "" || len(name) > maxDNLen {
		return nil, &Error{Code: ResultNoSuchObject, Message: "no such " + what + ": " + name, Err: notFound}
	}
	// The matched attribute comes back too, to be checked here.
	withAttr := []string{attr}
	for _, a := range attrs {
		if a != "1.1" && !strings.EqualFold(a, attr) {
			withAttr = append(withAttr, a)
		}
	}
	spec := searchSpec{base: base, scope: ldap.ScopeWholeSubtree, filter: filterAnd(kindFilter, eqFilter(attr, name)), attrs: withAttr, limit: 2}
	if looksLikeDN(name) {
		spec = searchSpec{base: name, scope: ldap.ScopeBaseObject, filter: kindFilter, attrs: attrs, limit: 2}
	}
	entries, refs, err := c.search(ctx, spec)
	if code := CodeOf(err); spec.scope == ldap.ScopeBaseObject && (code == ResultNoSuchObject || code == ResultInvalidDNSyntax) {
		err, entries = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if spec.scope != ldap.ScopeBaseObject {
		// The server's matching is trusted only as far as it agrees.
		kept := entries[:0]
		for _, e := range entries {
			for _, v := range stringValues(e, attr) {
				if strings.EqualFold(collapseSpaces(v), collapseSpaces(name)) {
					kept = append(kept, e)
					break
				}
			}
		}
		entries = kept
	}
	switch len(entries) {
	case 0:
		if len(refs) > 0 {
			return nil, &ReferralError{URLs: refs}
		}
		return nil, &Error{Code: ResultNoSuchObject, Message: "no such " + what + ": " + name, Err: notFound}
	case 1:
		return entries[0], nil
	}
	return nil, &Error{Code: ResultConstraintViolation, Message: fmt.Sprintf("%s %q names more than one entry", what, name), Err: ErrAmbiguous}
}

func (c *Client) userEntry(ctx context.Context, name string, attrs []string) (*ldap.Entry, error) {
	attr := c.attrs.Login
	if strings.Contains(name, "@") {
		attr = c.attrs.UPN
	}
	return c.lookup(ctx, name, c.attrs.UserFilter, c.cfg.UserBase, attr, attrs, ErrNoSuchUser, "user")
}

func (c *Client) groupEntry(ctx context.Context, name string, attrs []string) (*ldap.Entry, error) {
	return c.lookup(ctx, name, c.attrs.GroupFilter, c.cfg.GroupBase, c.attrs.GroupName, attrs, ErrNoSuchGroup, "group")
}

// withGroups fills User.Groups where the directory keeps no memberOf.
func (c *Client) withGroups(ctx context.Context, users []*User) error {
	if has(c.attrs.MemberOf) || len(users) == 0 {
		return nil
	}
	if len(users) == 1 {
		gs, _, err := c.search(ctx, searchSpec{base: c.cfg.GroupBase, scope: ldap.ScopeWholeSubtree,
			filter: filterAnd(c.attrs.GroupFilter, eqFilter(c.attrs.Member, users[0].DN)), attrs: []string{"1.1"}})
		if err != nil {
			return err
		}
		for _, g := range gs {
			users[0].Groups = append(users[0].Groups, g.DN)
		}
		return nil
	}
	groups, err := c.ListGroups(ctx)
	if err != nil {
		return err
	}
	byDN := map[string]*User{}
	for _, u := range users {
		byDN[normDN(u.DN)] = u
	}
	for _, g := range groups {
		for _, m := range g.Members {
			if u := byDN[normDN(m)]; u != nil {
				u.Groups = append(u.Groups, g.DN)
			}
		}
	}
	return nil
}

// normDN is a DN's comparison form for the client (go-ldap's parse,
// lower-cased types and values).
func normDN(s string) string {
	d, err := ldap.ParseDN(s)
	if err != nil {
		return strings.ToLower(s)
	}
	parts := make([]string, len(d.RDNs))
	for i, r := range d.RDNs {
		avas := make([]string, len(r.Attributes))
		for j, a := range r.Attributes {
			avas[j] = strings.ToLower(a.Type) + "=" + strings.ToLower(collapseSpaces(a.Value))
		}
		parts[i] = strings.Join(avas, "+")
	}
	return strings.Join(parts, ",")
}

// LookupUser finds a user by login name, UPN or DN.
func (c *Client) LookupUser(ctx context.Context, name string) (*User, error) {
	e, err := c.userEntry(ctx, name, c.userAttrs())
	if err != nil {
		return nil, err
	}
	u := c.toUser(e)
	return u, c.withGroups(ctx, []*User{u})
}

// UserByMail finds the user with a mail address.
func (c *Client) UserByMail(ctx context.Context, mail string) (*User, error) {
	e, err := c.lookup(ctx, mail, c.attrs.UserFilter, c.cfg.UserBase, c.attrs.Mail, c.userAttrs(), ErrNoSuchUser, "user with mail")
	if err != nil {
		return nil, err
	}
	u := c.toUser(e)
	return u, c.withGroups(ctx, []*User{u})
}

// FindUsers returns up to limit users whose names, UPN or mail start with
// prefix (limit ≤ 0: all, paged). Continuation references are not
// followed: the users found are returned with a *ReferralError.
func (c *Client) FindUsers(ctx context.Context, prefix string, limit int) ([]*User, error) {
	m := c.attrs
	var any []string
	for _, a := range optional(m.Login, m.CommonName, m.DisplayName, m.GivenName, m.Surname, m.Mail, m.UPN) {
		any = append(any, prefixFilter(a, prefix))
	}
	filter := filterAnd(m.UserFilter, "(|"+strings.Join(any, "")+")")
	entries, refs, err := c.search(ctx, searchSpec{base: c.cfg.UserBase, scope: ldap.ScopeWholeSubtree, filter: filter, attrs: c.userAttrs(), limit: max(limit, 0)})
	if err != nil {
		return nil, err
	}
	out := make([]*User, 0, len(entries))
	for _, e := range entries {
		out = append(out, c.toUser(e))
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	if err := c.withGroups(ctx, out); err != nil {
		return nil, err
	}
	if len(refs) > 0 {
		return out, &ReferralError{URLs: refs}
	}
	return out, nil
}

// ListUsers returns every user, sorted by login name. Continuation
// references are not followed: the users found are returned with a
// *ReferralError.
func (c *Client) ListUsers(ctx context.Context) ([]*User, error) {
	entries, refs, err := c.search(ctx, searchSpec{base: c.cfg.UserBase, scope: ldap.ScopeWholeSubtree, filter: c.attrs.UserFilter, attrs: c.userAttrs()})
	if err != nil {
		return nil, err
	}
	out := make([]*User, 0, len(entries))
	for _, e := range entries {
		out = append(out, c.toUser(e))
	}
	sortUsers(out)
	if err := c.withGroups(ctx, out); err != nil {
		return nil, err
	}
	if len(refs) > 0 {
		return out, &ReferralError{URLs: refs}
	}
	return out, nil
}

// PublishCertificate adds a certificate to the user's entry.
func (c *Client) PublishCertificate(ctx context.Context, user string, der []byte) error {
	if !isCertificateDER(der) {
		return &Error{Code: ResultInvalidAttributeSyntax, Message: "not a DER certificate"}
	}
	e, err := c.userEntry(ctx, user, []string{"1.1"})
	if err != nil {
		return err
	}
	req := ldap.NewModifyRequest(e.DN, nil)
	req.Add(c.attrs.Certificate, []string{string(der)})
	err = c.do(ctx, func(conn *ldap.Conn) error { return conn.Modify(req) })
	if CodeOf(err) == ResultAttributeOrValueExists {
		return nil
	}
	return err
}

// UserCertificates returns the certificates published to a user.
func (c *Client) UserCertificates(ctx context.Context, user string) ([][]byte, error) {
	e, err := c.userEntry(ctx, user, []string{c.attrs.Certificate})
	if err != nil {
		return nil, err
	}
	return rawValues(e, c.attrs.Certificate), nil
}

// LookupGroup finds a group by name or DN.
func (c *Client) LookupGroup(ctx context.Context, name string) (*Group, error) {
	e, err := c.groupEntry(ctx, name, c.groupAttrs())
	if err != nil {
		return nil, err
	}
	g := c.toGroup(e)
	return g, c.rangedMembers(ctx, e, g)
}

// ListGroups returns every group, sorted by name.
func (c *Client) ListGroups(ctx context.Context) ([]*Group, error) {
	entries, refs, err := c.search(ctx, searchSpec{base: c.cfg.GroupBase, scope: ldap.ScopeWholeSubtree, filter: c.attrs.GroupFilter, attrs: c.groupAttrs()})
	if err != nil {
		return nil, err
	}
	out := make([]*Group, 0, len(entries))
	for _, e := range entries {
		g := c.toGroup(e)
		if err := c.rangedMembers(ctx, e, g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	sortGroups(out)
	if len(refs) > 0 {
		return out, &ReferralError{URLs: refs}
	}
	return out, nil
}

// rangedMembers completes the member list of a large AD group: AD returns
// at most 1500 values at once, as member;range=0-1499, and the rest on
// request (MS-ADTS 3.1.1.3.1.3.3).
func (c *Client) rangedMembers(ctx context.Context, e *ldap.Entry, g *Group) error {
	member := baseAttr(c.attrs.Member)
	for {
		next := -1
		for _, a := range e.Attributes {
			name, opt, ok := strings.Cut(a.Name, ";")
			if !ok || !strings.EqualFold(name, member) || !strings.HasPrefix(strings.ToLower(opt), "range=") {
				continue
			}
			_, hi, _ := strings.Cut(opt[len("range="):], "-")
			if hi == "*" {
				return nil
			}
			n, err := strconv.Atoi(hi)
			if err != nil {
				return nil
			}
			next = n + 1
		}
		if next < 0 {
			return nil
		}
		attr := fmt.Sprintf("%s;range=%d-*", member, next)
		entries, _, err := c.search(ctx, searchSpec{base: g.DN, scope: ldap.ScopeBaseObject, filter: "(objectClass=*)", attrs: []string{attr}, limit: 1})
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		e = entries[0]
		got := false
		for _, a := range e.Attributes {
			if name, _, _ := strings.Cut(a.Name, ";"); strings.EqualFold(name, member) {
				g.Members = append(g.Members, a.Values...)
				got = len(a.Values) > 0 || got
			}
		}
		if !got {
			return nil
		}
	}
}

// memberEntryDN resolves a member name: a user, else a group.
func (c *Client) memberEntryDN(ctx context.Context, name string) (string, error) {
	e, err := c.userEntry(ctx, name, []string{"1.1"})
	if errors.Is(err, ErrNoSuchUser) {
		e, err = c.groupEntry(ctx, name, []string{"1.1"})
		if errors.Is(err, ErrNoSuchGroup) {
			return "", &Error{Code: ResultNoSuchObject, Message: "no such user or group: " + name, Err: ErrNoSuchUser}
		}
	}
	if err != nil {
		return "", err
	}
	return e.DN, nil
}

func containsDN(list []string, dn string) bool {
	n := normDN(dn)
	for _, m := range list {
		if normDN(m) == n {
			return true
		}
	}
	return false
}

// AddGroupMember makes a user (or group) a member of a group.
func (c *Client) AddGroupMember(ctx context.Context, group, member string) error {
	g, err := c.LookupGroup(ctx, group)
	if err != nil {
		return err
	}
	m, err := c.memberEntryDN(ctx, member)
	if err != nil {
		return err
	}
	if containsDN(g.Members, m) {
		return nil
	}
	req := ldap.NewModifyRequest(g.DN, nil)
	req.Add(c.attrs.Member, []string{m})
	err = c.do(ctx, func(conn *ldap.Conn) error { return conn.Modify(req) })
	// OpenLDAP says attributeOrValueExists, AD entryAlreadyExists.
	if code := CodeOf(err); code == ResultAttributeOrValueExists || code == ResultEntryAlreadyExists {
		return nil
	}
	return err
}

// RemoveGroupMember takes a member out of a group.
func (c *Client) RemoveGroupMember(ctx context.Context, group, member string) error {
	g, err := c.LookupGroup(ctx, group)
	if err != nil {
		return err
	}
	m, err := c.memberEntryDN(ctx, member)
	if err != nil {
		return err
	}
	notMember := &Error{Code: ResultNoSuchAttribute, Message: fmt.Sprintf("%s is not a member of %s", member, group), Err: ErrNotMember}
	if !containsDN(g.Members, m) {
		return notMember
	}
	req := ldap.NewModifyRequest(g.DN, nil)
	req.Delete(c.attrs.Member, []string{m})
	err = c.do(ctx, func(conn *ldap.Conn) error { return conn.Modify(req) })
	if CodeOf(err) == ResultNoSuchAttribute {
		return notMember
	}
	return err
}

// maxNesting bounds how deep IsMember follows nested groups.
const maxNesting = 16

// IsMember reports whether member belongs to group, directly or through
// nested groups. It walks up from the member with searches on member
// (any server can answer those), at most maxNesting levels.
func (c *Client) IsMember(ctx context.Context, group, member string) (bool, error) {
	ge, err := c.groupEntry(ctx, group, []string{"1.1"})
	if err != nil {
		return false, err
	}
	m, err := c.memberEntryDN(ctx, member)
	if err != nil {
		return false, err
	}
	target := normDN(ge.DN)
	seen := map[string]bool{normDN(m): true}
	frontier := []string{m}
	for depth := 0; depth < maxNesting && len(frontier) > 0; depth++ {
		var or strings.Builder
		or.WriteString("(|")
		for _, dn := range frontier {
			or.WriteString(eqFilter(c.attrs.Member, dn))
		}
		or.WriteString(")")
		groups, _, err := c.search(ctx, searchSpec{base: c.cfg.GroupBase, scope: ldap.ScopeWholeSubtree, filter: filterAnd(c.attrs.GroupFilter, or.String()), attrs: []string{"1.1"}})
		if err != nil {
			return false, err
		}
		frontier = frontier[:0]
		for _, g := range groups {
			n := normDN(g.DN)
			if n == target {
				return true, nil
			}
			if !seen[n] {
				seen[n] = true
				frontier = append(frontier, g.DN)
			}
		}
	}
	return false, nil
}
