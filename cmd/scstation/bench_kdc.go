package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/kdc/kdcbench"
	"github.com/scstation/scstation/pki"
)

// benchKDCCommand is `bench kdc`, the Kerberos load generator (the lead
// registers it under bench).
func (a *app) benchKDCCommand() *cobra.Command {
	var (
		cfg                       kdcbench.Config
		certFile, keyFile, caFile string
		pwEnv, ccache             string
		asJSON                    bool
	)
	cmd := &cobra.Command{
		Use:   "kdc --kdc ADDR --realm R --mode pkinit-dh|pkinit-rsa|password|tgs [--requests N] [--conns C] [--cert F --key F [--ca F] | --user U --password-env V | --ccache F] [--service S]",
		Short: "Logon load against any KDC: logons/s and latency percentiles",
		Long: `bench kdc pre-generates --requests distinct, validly built requests before
the clock starts and then fires them over --conns concurrent connections (a
new TCP connection per request, as Kerberos clients do; --udp sends
datagrams instead). It works against any KDC, ours or MIT krb5kdc.

Modes:
  pkinit-dh   PKINIT Diffie-Hellman (MODP group 14) with --cert and --key:
              each request has its own nonce, AuthPack and DH key, signed
              with the key (the signing is not measured).
  pkinit-rsa  PKINIT public-key encryption mode (an RSA key).
  password    encrypted timestamp for --user with the password in the
              environment variable named by --password-env.
  tgs         service tickets for --service: a TGT is got once (from
              --ccache, or by PKINIT with --cert/--key, or by password),
              then each TGS-REQ carries a fresh authenticator.

Each reply must be an AS-REP (TGS-REP for tgs); KRB-ERRORs are counted by
code. The enctype asked for is aes256-cts-hmac-sha1-96 (--etype).
It reports logons per second, latency p50/p90/p99/max and errors.

Exit code 1 when no request succeeded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.KDC == "" || cfg.Realm == "" {
				return usagef("--kdc and --realm are required")
			}
			if !slices.Contains(kdcbench.Modes, cfg.Mode) {
				return usagef("--mode is one of %s", strings.Join(kdcbench.Modes, ", "))
			}
			if (certFile == "") != (keyFile == "") {
				return usagef("--cert and --key go together")
			}
			if certFile != "" {
				certs, err := readCertFile(certFile)
				if err != nil {
					return usageError{err}
				}
				cfg.Certificate, cfg.Chain = certs[0], certs[1:]
				pemKey, err := os.ReadFile(keyFile)
				if err != nil {
					return usageError{err}
				}
				if cfg.Key, err = pki.ParsePrivateKeyPEM(pemKey, nil); err != nil {
					return usagef("%s: %v", keyFile, err)
				}
				if cfg.User == "" {
					cfg.User = certUser(cfg.Certificate)
				}
			}
			if caFile != "" {
				certs, err := readCertFile(caFile)
				if err != nil {
					return usageError{err}
				}
				cfg.Roots = x509.NewCertPool()
				for _, c := range certs {
					cfg.Roots.AddCert(c)
				}
			}
			if pwEnv != "" {
				v := os.Getenv(pwEnv)
				if v == "" {
					return usagef("the environment variable %s (--password-env) is empty", pwEnv)
				}
				cfg.Password = []byte(v)
			}
			switch cfg.Mode {
			case kdcbench.PKINITDH, kdcbench.PKINITRSA:
				if cfg.Certificate == nil {
					return usagef("--mode %s needs --cert and --key", cfg.Mode)
				}
			case kdcbench.Password:
				if cfg.User == "" || cfg.Password == nil {
					return usagef("--mode password needs --user and --password-env")
				}
			case kdcbench.TGS:
				if cfg.Service == "" {
					return usagef("--mode tgs needs --service")
				}
				if ccache != "" {
					tgt, err := kdcbench.TGTFromCCache(ccache, cfg.Realm)
					if err != nil {
						return usageError{err}
					}
					cfg.TGT = tgt
				} else if cfg.Certificate == nil && (cfg.User == "" || cfg.Password == nil) {
					return usagef("--mode tgs needs --ccache, --cert and --key, or --user and --password-env")
				} else if cfg.Certificate != nil && cfg.Roots == nil {
					return usagef("getting the TGT by PKINIT needs --ca (the KDC certificate's trust anchor)")
				}
			}
			if cfg.User == "" && cfg.TGT == nil {
				return usagef("--user is required")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			if !asJSON {
				fmt.Fprintf(out, "%s  %s  mode %s  %d requests  %d conns\ngenerating requests...\n", cfg.KDC, cfg.Realm, cfg.Mode, cfg.Requests, cfg.Conns)
			}
			load, err := kdcbench.Prepare(ctx, cfg)
			clear(cfg.Password)
			if err != nil {
				return err
			}
			res, err := load.Fire(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					KDC, Realm, Mode           string
					Requests, Conns, OK        int
					Elapsed                    string
					LogonsPerSec               float64
					P50us, P90us, P99us, MaxUS int64
					Errors                     map[string]int `json:",omitempty"`
				}{cfg.KDC, cfg.Realm, cfg.Mode, res.Requests, cfg.Conns, res.OK, res.Elapsed.Round(time.Millisecond).String(), res.Rate,
					res.P50.Microseconds(), res.P90.Microseconds(), res.P99.Microseconds(), res.Max.Microseconds(), res.Errors}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "generated in %s, sent in %s\n", res.PreGen.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond))
				fmt.Fprintf(out, "logons    %d  (%.0f/s)\n", res.OK, res.Rate)
				fmt.Fprintf(out, "latency   p50 %s  p90 %s  p99 %s  max %s\n", dur(res.P50), dur(res.P90), dur(res.P99), dur(res.Max))
				fmt.Fprintf(out, "errors    %d\n", res.ErrorCount())
				kinds := make([]string, 0, len(res.Errors))
				for k := range res.Errors {
					kinds = append(kinds, k)
				}
				sort.Strings(kinds)
				for _, k := range kinds {
					fmt.Fprintf(out, "          %d  %s\n", res.Errors[k], k)
				}
			}
			if res.OK == 0 {
				return refusal{errors.New("no request succeeded")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.KDC, "kdc", "", "the KDC's address, host:port")
	f.StringVar(&cfg.Realm, "realm", "", "the realm")
	f.StringVar(&cfg.Mode, "mode", kdcbench.PKINITDH, "pkinit-dh, pkinit-rsa, password or tgs")
	f.IntVar(&cfg.Requests, "requests", 1000, "requests to pre-generate and send")
	f.IntVar(&cfg.Conns, "conns", 16, "concurrent connections, one request outstanding on each")
	f.BoolVar(&cfg.UDP, "udp", false, "send over UDP instead of TCP")
	f.StringVar(&cfg.User, "user", "", "client principal (default with --cert: the certificate's UPN user part or CN)")
	f.BoolVar(&cfg.Enterprise, "enterprise", false, "send --user as an enterprise (UPN) name")
	f.StringVar(&certFile, "cert", "", "the user's certificate (PEM, intermediates after it)")
	f.StringVar(&keyFile, "key", "", "the user's private key (PEM, unencrypted)")
	f.StringVar(&caFile, "ca", "", "trust anchors for the KDC's certificate (PEM; for tgs with PKINIT)")
	f.StringVar(&pwEnv, "password-env", "", "name of the environment variable holding --user's password")
	f.StringVar(&ccache, "ccache", "", "MIT credential cache holding the TGT (tgs)")
	f.StringVar(&ccache, "tgt", "", "alias of --ccache")
	f.StringVar(&cfg.Service, "service", "", "service principal for tgs, e.g. host/station.example.test")
	f.Int32Var(&cfg.EType, "etype", 18, "enctype to ask for (18 aes256-cts-hmac-sha1-96)")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "bound on one exchange")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// certUser is the login name a certificate names: the user part of its
// UPN-like e-mail SAN, or its common name.
func certUser(c *x509.Certificate) string {
	for _, e := range c.EmailAddresses {
		if u, _, ok := strings.Cut(e, "@"); ok {
			return u
		}
	}
	return c.Subject.CommonName
}
