package station

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/scstation/scstation/internal/atomicfile"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
)

// ConfigFile is the configuration file's name in the data directory.
const ConfigFile = "config.toml"

// Config is the station's configuration, kept in config.toml.
type Config struct {
	Realm  string `toml:"realm"`
	Domain string `toml:"domain"`
	// Standalone stations publish certificates to files instead of the
	// directory.
	Standalone bool      `toml:"standalone"`
	CA         CAConfig  `toml:"ca"`
	KDC        KDCConfig `toml:"kdc"`
	Services   Services  `toml:"services"`
	// Directory says which directory the station uses ([directory]).
	Directory DirectoryConfig `toml:"directory"`
}

// KDCConfig tunes the embedded KDC.
type KDCConfig struct {
	// StrongMapping is how strictly a logon certificate must map to its
	// account: "off", "compat" (the default: a SID extension, when present,
	// must match) or "full" (a SID extension or a strong
	// altSecurityIdentities mapping is required), as Windows enforces.
	StrongMapping string `toml:"strong_mapping"`
	// Mode is "embedded" (the default: scstation serve runs the KDC) or
	// "external" (an MIT or Heimdal KDC does, set up from what
	// scstation kdc export writes).
	Mode string `toml:"mode,omitempty"`
}

// KDC modes ([kdc] mode).
const (
	KDCEmbedded = "embedded"
	KDCExternal = "external"
)

// External reports whether an external KDC serves the realm.
func (k KDCConfig) External() bool { return k.Mode == KDCExternal }

// CAConfig describes the CA.
type CAConfig struct {
	Name         string           `toml:"name"`
	KeyAlgorithm pki.KeyAlgorithm `toml:"key_algorithm"`
	// KeyEncrypted says the key file needs a passphrase.
	KeyEncrypted bool `toml:"key_encrypted"`
	// BaseURL is where the HTTP service is reached from outside: issued
	// certificates point at BaseURL/ca.crl and BaseURL/ca.crt.
	BaseURL     string       `toml:"base_url"`
	CRLValidity pki.Duration `toml:"crl_validity"`
}

// Services are the embedded services' listen addresses; empty turns one off.
type Services struct {
	// Hostname is the name clients use for this station; the services'
	// TLS certificate carries it (and localhost).
	Hostname string `toml:"hostname"`
	KDC      string `toml:"kdc"`
	LDAP     string `toml:"ldap"`
	LDAPS    string `toml:"ldaps"`
	HTTP     string `toml:"http"`
	// SSH is the administrators' station over SSH (serve only); off
	// unless set, e.g. "127.0.0.1:2222".
	SSH string `toml:"ssh"`
}

// DefaultServices listen on loopback on unprivileged ports; SSH is off.
var DefaultServices = Services{Hostname: "localhost", KDC: "127.0.0.1:1088", LDAP: "127.0.0.1:1389", LDAPS: "127.0.0.1:1636", HTTP: "127.0.0.1:1080"}

// Validate checks the configuration for values the station cannot use.
func (c *Config) Validate() error {
	if c.Domain == "" || strings.ContainsAny(c.Domain, " /\\@") || strings.HasPrefix(c.Domain, ".") || strings.HasSuffix(c.Domain, ".") {
		return fmt.Errorf("station: domain %q is not a DNS domain", c.Domain)
	}
	if c.Realm == "" || strings.ContainsAny(c.Realm, " /\\@") {
		return fmt.Errorf("station: realm %q is not valid", c.Realm)
	}
	if _, err := pki.ParseKeyAlgorithm(string(c.CA.KeyAlgorithm)); err != nil {
		return err
	}
	if c.KDC.StrongMapping == "" {
		c.KDC.StrongMapping = "compat"
	}
	if _, err := kdc.ParseMappingMode(c.KDC.StrongMapping); err != nil {
		return err
	}
	switch c.KDC.Mode {
	case "":
		c.KDC.Mode = KDCEmbedded
	case KDCEmbedded, KDCExternal:
	default:
		return fmt.Errorf("station: [kdc] mode %q: want %q or %q", c.KDC.Mode, KDCEmbedded, KDCExternal)
	}
	if time.Duration(c.CA.CRLValidity) <= 0 {
		return errors.New("station: ca.crl_validity must be positive")
	}
	if err := c.Directory.validate(); err != nil {
		return err
	}
	return nil
}

// BaseDN is the directory suffix for the domain: example.test →
// dc=example,dc=test.
func (c *Config) BaseDN() string {
	parts := strings.Split(c.Domain, ".")
	for i, p := range parts {
		parts[i] = "dc=" + p
	}
	return strings.Join(parts, ",")
}

func loadConfig(dir string) (*Config, error) {
	var c Config
	md, err := toml.DecodeFile(filepath.Join(dir, ConfigFile), &c)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (run scstation init first)", ErrNoDataDir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("station: %s: %w", ConfigFile, err)
	}
	for _, k := range md.Undecoded() {
		if len(k) == 2 && k[0] == "directory" && strings.Contains(strings.ToLower(k[1]), "password") {
			return nil, fmt.Errorf("station: %s: [directory] %s: a password never goes in the configuration; use password_file or $%s", ConfigFile, k[1], PasswordEnv)
		}
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("station: %s: unknown setting %q", ConfigFile, und[0].String())
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func saveConfig(dir string, c *Config) error {
	var b strings.Builder
	b.WriteString("# scstation configuration\n")
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ConfigFile), []byte(b.String()), 0o600)
}
