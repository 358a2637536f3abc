package station

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/scstation/scstation/directory"
)

// Directory modes (config.toml [directory] mode).
const (
	// DirectoryEmbedded is the station's own directory (the default).
	DirectoryEmbedded = "embedded"
	// DirectoryLDAP is an external OpenLDAP or Active Directory.
	DirectoryLDAP = "ldap"
)

// PasswordEnv is the environment variable that holds the external
// directory's bind password when [directory] names no password_file.
const PasswordEnv = "SCSTATION_LDAP_PASSWORD"

// ErrExternalDirectory: something that needs the embedded directory on a
// station configured with an external one.
var ErrExternalDirectory = errors.New("station: this station uses an external directory; manage its users there")

// DirectoryConfig is config.toml's [directory] section: which directory
// the CA, the KDC and the station use. Passwords never go in the file:
// bind_dn's password is read from password_file or $SCSTATION_LDAP_PASSWORD;
// client_cert/client_key bind with SASL EXTERNAL instead.
type DirectoryConfig struct {
	// Mode is "embedded" (default) or "ldap".
	Mode string `toml:"mode,omitempty"`
	// URL is ldap://host[:port] or ldaps://host[:port]; more than one,
	// separated by spaces, are tried in order.
	URL string `toml:"url,omitempty"`
	// StartTLS upgrades ldap:// connections before binding.
	StartTLS bool `toml:"start_tls,omitempty"`
	// CAFile is the PEM bundle that verifies the server's certificate
	// (default: the system's). Relative paths are in the data directory.
	CAFile string `toml:"ca_file,omitempty"`
	// BindDN binds with a password from PasswordFile or $SCSTATION_LDAP_PASSWORD.
	BindDN       string `toml:"bind_dn,omitempty"`
	PasswordFile string `toml:"password_file,omitempty"`
	// ClientCert and ClientKey bind with SASL EXTERNAL instead.
	ClientCert string `toml:"client_cert,omitempty"`
	ClientKey  string `toml:"client_key,omitempty"`
	// BaseDN is the naming context; UserBase and GroupBase narrow where
	// users and groups are searched (default BaseDN).
	BaseDN    string `toml:"base_dn,omitempty"`
	UserBase  string `toml:"user_base,omitempty"`
	GroupBase string `toml:"group_base,omitempty"`
	// Flavor is the attribute mapping: "openldap" (inetOrgPerson, uid,
	// userPrincipalName from the upnPrincipal class) or "ad".
	Flavor string `toml:"flavor,omitempty"`
	// Attributes override single names of the flavor's mapping.
	Attributes directory.AttributeMap `toml:"attributes,omitempty"`
}

// External says the station uses an external directory.
func (d *DirectoryConfig) External() bool { return d.Mode == DirectoryLDAP }

// validate checks the section; errors name the setting.
func (d *DirectoryConfig) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("station: "+ConfigFile+" [directory]: "+format, args...)
	}
	switch d.Mode {
	case "", DirectoryEmbedded:
		d.Mode = DirectoryEmbedded
		if d.URL != "" || d.BindDN != "" || d.PasswordFile != "" || d.ClientCert != "" || d.ClientKey != "" || d.BaseDN != "" || d.Flavor != "" || d.CAFile != "" {
			return bad("mode is %q: url, bind_dn, password_file, client_cert, client_key, base_dn, ca_file and flavor are for mode = %q", DirectoryEmbedded, DirectoryLDAP)
		}
		return nil
	case DirectoryLDAP:
	default:
		return bad("mode %q is not %q or %q", d.Mode, DirectoryEmbedded, DirectoryLDAP)
	}
	urls := strings.Fields(d.URL)
	if len(urls) == 0 {
		return bad("mode = %q needs url (ldap://host or ldaps://host)", DirectoryLDAP)
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
			return bad("url %q is not ldap://host[:port] or ldaps://host[:port]", s)
		}
	}
	if d.BaseDN == "" {
		return bad("mode = %q needs base_dn", DirectoryLDAP)
	}
	for _, f := range []struct{ name, dn string }{{"base_dn", d.BaseDN}, {"user_base", d.UserBase}, {"group_base", d.GroupBase}, {"bind_dn", d.BindDN}} {
		if f.dn == "" {
			continue
		}
		if _, err := ldap.ParseDN(f.dn); err != nil {
			return bad("%s %q is not a DN: %v", f.name, f.dn, err)
		}
	}
	switch d.Flavor {
	case directory.ProfileOpenLDAP, directory.ProfileAD:
	case "":
		return bad("mode = %q needs flavor (%q or %q)", DirectoryLDAP, directory.ProfileOpenLDAP, directory.ProfileAD)
	default:
		return bad("flavor %q is not %q or %q", d.Flavor, directory.ProfileOpenLDAP, directory.ProfileAD)
	}
	cert := d.ClientCert != "" || d.ClientKey != ""
	switch {
	case cert && (d.ClientCert == "" || d.ClientKey == ""):
		return bad("client_cert and client_key go together")
	case cert && (d.BindDN != "" || d.PasswordFile != ""):
		return bad("bind with bind_dn and a password, or with client_cert and client_key (SASL EXTERNAL), not both")
	case d.PasswordFile != "" && d.BindDN == "":
		return bad("password_file without bind_dn")
	case !cert && d.BindDN == "":
		return bad("mode = %q needs bind_dn (with password_file or $%s) or client_cert and client_key", DirectoryLDAP, PasswordEnv)
	}
	if cert {
		for _, s := range urls {
			if !strings.HasPrefix(s, "ldaps://") && !d.StartTLS {
				return bad("a certificate bind needs ldaps:// or start_tls = true (url %q)", s)
			}
		}
	}
	return nil
}

// clientConfig is the directory client's configuration for the section;
// relative file names are in the data directory.
func (d *DirectoryConfig) clientConfig(dataDir string) directory.ClientConfig {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dataDir, p)
	}
	cfg := directory.ClientConfig{
		URLs: strings.Fields(d.URL), StartTLS: d.StartTLS, CAFile: abs(d.CAFile),
		BindDN: d.BindDN, PasswordFile: abs(d.PasswordFile),
		ClientCert: abs(d.ClientCert), ClientKey: abs(d.ClientKey),
		BaseDN: d.BaseDN, UserBase: d.UserBase, GroupBase: d.GroupBase,
		Profile: d.Flavor, Attributes: d.Attributes,
	}
	if d.BindDN != "" && d.PasswordFile == "" {
		cfg.PasswordEnv = PasswordEnv
	}
	return cfg
}

// UserDirectory is the directory the station uses: the embedded store, or
// a client of the external directory ([directory] mode = "ldap"),
// connected and bound on first use. The CA takes users from it and
// publishes to it, the KDC maps logon certificates through it.
func (s *Station) UserDirectory() (directory.Directory, error) {
	if !s.Config.Directory.External() {
		return s.Directory()
	}
	sh := s.shared
	sh.extMu.Lock()
	defer sh.extMu.Unlock()
	if sh.ext == nil {
		c, err := directory.NewClient(context.Background(), s.Config.Directory.clientConfig(s.Dir))
		if err != nil {
			return nil, fmt.Errorf("station: external directory: %w", err)
		}
		sh.ext = c
	}
	return sh.ext, nil
}
