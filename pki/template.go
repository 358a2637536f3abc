package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Requester says who may ask for a certificate from a template.
type Requester string

const (
	// RequesterOperator is the CA operator at the console, who holds the CA key.
	RequesterOperator Requester = "operator"
	// RequesterAgent is an enrollment agent, through an enroll-on-behalf-of
	// request signed with its agent certificate.
	RequesterAgent Requester = "agent"
	// RequesterSelf is the user named in the request, authenticated as that user.
	RequesterSelf Requester = "self"
)

// Template is a certificate profile. Templates are data: the built-in ones
// can be overridden, and new ones added, by TOML files in the CA's template
// directory.
type Template struct {
	Name        string   `toml:"name"`
	Description string   `toml:"description"`
	Validity    Duration `toml:"validity"`
	// KeyAlgorithms lists the subject key algorithms and sizes allowed.
	KeyAlgorithms []KeyAlgorithm `toml:"key_algorithms"`
	// KeyUsage names RFC 5280 key usages. keyEncipherment is applied to RSA
	// keys only and keyAgreement to EC keys only, so one template serves both.
	KeyUsage    []string `toml:"key_usage"`
	ExtKeyUsage []string `toml:"ext_key_usage"`
	// SubjectAltNames names the SANs built from directory data: upn, pkinit
	// (the user's principal), email, dns (the host), krbtgt (the realm's TGS).
	SubjectAltNames []string `toml:"subject_alt_names"`
	// SID adds the strong-mapping SID extension with the user's objectSid.
	SID        bool        `toml:"sid"`
	Requesters []Requester `toml:"requesters"`
	// Agents restricts which enrollment agents (by user name) may use the
	// template; empty means any valid enrollment agent.
	Agents []string `toml:"agents"`
	// Publish sends issued certificates to the user's directory entry (or
	// to files, in standalone mode).
	Publish bool `toml:"publish"`
	// Host marks templates whose subject is a host (the KDC) rather than a
	// directory user.
	Host bool `toml:"host"`
}

// Duration is a time.Duration that reads "365d", "8760h" or "90m" from TOML.
type Duration time.Duration

// UnmarshalText accepts Go durations plus a "d" suffix for days.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return fmt.Errorf("pki: invalid duration %q", s)
		}
		*d = Duration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("pki: invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes whole days as "Nd".
func (d Duration) MarshalText() ([]byte, error) {
	v := time.Duration(d)
	if v%(24*time.Hour) == 0 {
		return []byte(strconv.Itoa(int(v/(24*time.Hour))) + "d"), nil
	}
	return []byte(v.String()), nil
}

var keyUsageNames = map[string]x509.KeyUsage{
	"digitalSignature": x509.KeyUsageDigitalSignature,
	"nonRepudiation":   x509.KeyUsageContentCommitment,
	"keyEncipherment":  x509.KeyUsageKeyEncipherment,
	"dataEncipherment": x509.KeyUsageDataEncipherment,
	"keyAgreement":     x509.KeyUsageKeyAgreement,
}

type ekuName struct {
	known   x509.ExtKeyUsage
	unknown asn1.ObjectIdentifier
}

var ekuNames = map[string]ekuName{
	"clientAuth":              {known: x509.ExtKeyUsageClientAuth},
	"serverAuth":              {known: x509.ExtKeyUsageServerAuth},
	"emailProtection":         {known: x509.ExtKeyUsageEmailProtection},
	"smartcardLogon":          {unknown: OIDSmartCardLogon},
	"pkinitClientAuth":        {unknown: OIDPKINITClientAuth},
	"pkinitKDC":               {unknown: OIDPKINITKDC},
	"certificateRequestAgent": {unknown: OIDCertificateRequestAgent},
}

var sanNames = []string{"upn", "pkinit", "email", "dns", "krbtgt"}

// Validate checks a template for names and values the CA cannot use.
func (t *Template) Validate() error {
	if t.Name == "" || strings.ContainsAny(t.Name, " /\\\x00") {
		return fmt.Errorf("pki: template name %q is not valid", t.Name)
	}
	bad := func(what string, v any) error { return fmt.Errorf("pki: template %s: unknown %s %q", t.Name, what, v) }
	if t.Validity <= 0 {
		return fmt.Errorf("pki: template %s: validity must be positive", t.Name)
	}
	if len(t.KeyAlgorithms) == 0 {
		return fmt.Errorf("pki: template %s: no key algorithms allowed", t.Name)
	}
	for _, a := range t.KeyAlgorithms {
		if !slices.Contains(KeyAlgorithms, a) {
			return bad("key algorithm", a)
		}
	}
	for _, u := range t.KeyUsage {
		if _, ok := keyUsageNames[u]; !ok {
			return bad("key usage", u)
		}
	}
	for _, u := range t.ExtKeyUsage {
		if _, ok := ekuNames[u]; !ok {
			return bad("extended key usage", u)
		}
	}
	for _, s := range t.SubjectAltNames {
		if !slices.Contains(sanNames, s) {
			return bad("subject alt name source", s)
		}
	}
	if len(t.Requesters) == 0 {
		return fmt.Errorf("pki: template %s: nobody may request it", t.Name)
	}
	for _, r := range t.Requesters {
		switch r {
		case RequesterOperator, RequesterAgent, RequesterSelf:
		default:
			return bad("requester", r)
		}
	}
	return nil
}

// allows reports whether a requester kind may use the template.
func (t *Template) allows(r Requester) bool { return slices.Contains(t.Requesters, r) }

// keyUsage is the key usage for a subject key of the given algorithm.
func (t *Template) keyUsage(alg KeyAlgorithm) x509.KeyUsage {
	var ku x509.KeyUsage
	for _, n := range t.KeyUsage {
		if n == "keyEncipherment" && !alg.isRSA() || n == "keyAgreement" && alg.isRSA() {
			continue
		}
		ku |= keyUsageNames[n]
	}
	return ku
}

func (t *Template) extKeyUsage() ([]x509.ExtKeyUsage, []asn1.ObjectIdentifier) {
	var known []x509.ExtKeyUsage
	var unknown []asn1.ObjectIdentifier
	for _, n := range t.ExtKeyUsage {
		e := ekuNames[n]
		if e.unknown != nil {
			unknown = append(unknown, e.unknown)
		} else {
			known = append(known, e.known)
		}
	}
	return known, unknown
}

const year = Duration(365 * 24 * time.Hour)

// DefaultTemplates returns the built-in templates. Callers get fresh copies.
func DefaultTemplates() []*Template {
	userKeys := []KeyAlgorithm{RSA2048, RSA3072, RSA4096, P256, P384}
	return []*Template{
		{
			Name:            "smartcard-logon",
			Description:     "Smart card logon (Kerberos PKINIT)",
			Validity:        year,
			KeyAlgorithms:   userKeys,
			KeyUsage:        []string{"digitalSignature", "keyEncipherment"},
			ExtKeyUsage:     []string{"smartcardLogon", "clientAuth", "pkinitClientAuth"},
			SubjectAltNames: []string{"upn", "pkinit"},
			SID:             true,
			Requesters:      []Requester{RequesterAgent, RequesterOperator},
			Publish:         true,
		},
		{
			Name:            "smartcard-user",
			Description:     "Smart card logon and secure mail with one key",
			Validity:        year,
			KeyAlgorithms:   userKeys,
			KeyUsage:        []string{"digitalSignature", "keyEncipherment", "keyAgreement"},
			ExtKeyUsage:     []string{"smartcardLogon", "clientAuth", "pkinitClientAuth", "emailProtection"},
			SubjectAltNames: []string{"upn", "pkinit", "email"},
			SID:             true,
			Requesters:      []Requester{RequesterAgent, RequesterOperator},
			Publish:         true,
		},
		{
			Name:            "smime-signing",
			Description:     "Secure mail signing key",
			Validity:        year,
			KeyAlgorithms:   userKeys,
			KeyUsage:        []string{"digitalSignature", "nonRepudiation"},
			ExtKeyUsage:     []string{"emailProtection"},
			SubjectAltNames: []string{"email"},
			SID:             true,
			Requesters:      []Requester{RequesterAgent, RequesterSelf, RequesterOperator},
			Publish:         true,
		},
		{
			Name:            "smime-encryption",
			Description:     "Secure mail encryption key",
			Validity:        year,
			KeyAlgorithms:   userKeys,
			KeyUsage:        []string{"keyEncipherment", "keyAgreement"},
			ExtKeyUsage:     []string{"emailProtection"},
			SubjectAltNames: []string{"email"},
			SID:             true,
			Requesters:      []Requester{RequesterAgent, RequesterSelf, RequesterOperator},
			Publish:         true,
		},
		{
			Name:            "enrollment-agent",
			Description:     "Enrollment agent: requests certificates on behalf of users",
			Validity:        year,
			KeyAlgorithms:   userKeys,
			KeyUsage:        []string{"digitalSignature"},
			ExtKeyUsage:     []string{"certificateRequestAgent"},
			SubjectAltNames: []string{"upn"},
			SID:             true,
			Requesters:      []Requester{RequesterOperator},
		},
		{
			Name:            "server",
			Description:     "TLS server (the station's LDAPS and other services)",
			Validity:        year,
			KeyAlgorithms:   userKeys,
			KeyUsage:        []string{"digitalSignature", "keyEncipherment"},
			ExtKeyUsage:     []string{"serverAuth"},
			SubjectAltNames: []string{"dns"},
			Requesters:      []Requester{RequesterOperator},
			Host:            true,
		},
		{
			Name:            "kdc",
			Description:     "Kerberos KDC (PKINIT server)",
			Validity:        year,
			KeyAlgorithms:   userKeys,
			KeyUsage:        []string{"digitalSignature", "keyEncipherment"},
			ExtKeyUsage:     []string{"pkinitKDC", "serverAuth"},
			SubjectAltNames: []string{"krbtgt", "dns"},
			Requesters:      []Requester{RequesterOperator},
			Host:            true,
		},
	}
}

// LoadTemplates returns the built-in templates, overridden and extended by
// every *.toml file in dir (a missing dir means no overrides). A file replaces
// the built-in template of the same name whole.
func LoadTemplates(dir string) (map[string]*Template, error) {
	out := make(map[string]*Template)
	for _, t := range DefaultTemplates() {
		out[t.Name] = t
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		var t Template
		md, err := toml.DecodeFile(f, &t)
		if err != nil {
			return nil, fmt.Errorf("pki: template file %s: %w", f, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return nil, fmt.Errorf("pki: template file %s: unknown key %q", f, und[0].String())
		}
		if t.Name == "" {
			t.Name = strings.TrimSuffix(filepath.Base(f), ".toml")
		}
		if err := t.Validate(); err != nil {
			return nil, err
		}
		out[t.Name] = &t
	}
	return out, nil
}

// WriteTemplate writes t as TOML, e.g. to start a site's own variant.
func WriteTemplate(path string, t *Template) error {
	if err := t.Validate(); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := toml.NewEncoder(f).Encode(t); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ErrUnknownTemplate is returned for a template name the CA does not have.
var ErrUnknownTemplate = errors.New("pki: unknown template")
