package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/directory/ldapbench"
)

// benchCommand is the parent of the load generators (ldap here; kdc and ca
// join it). They work against any server, ours or not, and need no data
// directory.
func (a *app) benchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generators that work against any LDAP server, KDC or CA",
	}
	cmd.AddCommand(a.benchLDAPCommand(), a.benchKDCCommand())
	return cmd
}

func (a *app) benchLDAPCommand() *cobra.Command {
	var (
		cfg                 ldapbench.Config
		pwEnv, pwFile, attr string
		caFile              string
		asJSON              bool
	)
	cmd := &cobra.Command{
		Use:   "ldap --url U --filter TEMPLATE --range N [--bind-dn D --password-env V] [--conns N] [--duration T]",
		Short: "Search load against an LDAP server: searches/s and latency percentiles",
		Long: `bench ldap opens --conns connections to the server at --url (ldap:// or
ldaps://; --starttls upgrades ldap://), binds each once (--bind-dn, with the
password from the environment variable named by --password-env or from
--password-file; without --bind-dn, anonymously), and then keeps one subtree
search outstanding on each, for --warmup and then --duration. Each search's
filter is --filter with its %d replaced by a random index in [0, --range),
e.g. "(uid=user%d)".

It reports searches per second, latency percentiles (p50, p90, p99, max),
errors by result code, and searches that found nothing. The base defaults
to the server's first naming context.

Exit code 1 when no search succeeded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.URL == "" || cfg.Filter == "" || cfg.Range <= 0 {
				return usagef("--url, --filter and --range are required")
			}
			if cfg.BindDN != "" {
				switch {
				case pwEnv != "" && pwFile != "":
					return usagef("--password-env or --password-file, not both")
				case pwEnv != "":
					v := os.Getenv(pwEnv)
					if v == "" {
						return usagef("the environment variable %s (--password-env) is empty", pwEnv)
					}
					cfg.Password = []byte(v)
				case pwFile != "":
					data, err := os.ReadFile(pwFile)
					if err != nil {
						return usageError{err}
					}
					cfg.Password = []byte(strings.TrimRight(strings.SplitN(string(data), "\n", 2)[0], "\r"))
				default:
					return usagef("--bind-dn needs --password-env or --password-file")
				}
			}
			if attr != "" {
				cfg.Attrs = strings.Split(attr, ",")
			}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return usageError{err}
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return usagef("%s holds no PEM certificate", caFile)
				}
				cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := ldapbench.Run(ctx, cfg)
			clear(cfg.Password)
			if err != nil && res == nil {
				if strings.Contains(err.Error(), "filter") || strings.Contains(err.Error(), "range") || strings.Contains(err.Error(), "URL") {
					return usageError{err}
				}
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					URL, Filter                string
					Range, Conns               int
					Duration                   string
					Ops, Errors, Empty         int64
					OpsPerSec                  float64
					P50us, P90us, P99us, MaxUS int64
					ErrorKinds                 map[string]int64 `json:",omitempty"`
				}{cfg.URL, cfg.Filter, cfg.Range, cfg.Conns, res.Elapsed.Round(time.Millisecond).String(), res.Ops, res.Errors, res.Empty, res.OpsPerSec,
					res.P50.Microseconds(), res.P90.Microseconds(), res.P99.Microseconds(), res.Max.Microseconds(), res.ErrorKinds}); err != nil {
					return err
				}
			} else {
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "%s  %s  range %d  %d conns  %s\n", cfg.URL, cfg.Filter, cfg.Range, cfg.Conns, res.Elapsed.Round(time.Millisecond))
				fmt.Fprintf(out, "searches  %d  (%.0f/s)\n", res.Ops, res.OpsPerSec)
				fmt.Fprintf(out, "latency   p50 %s  p90 %s  p99 %s  max %s\n", dur(res.P50), dur(res.P90), dur(res.P99), dur(res.Max))
				fmt.Fprintf(out, "errors    %d\n", res.Errors)
				for k, n := range res.ErrorKinds {
					fmt.Fprintf(out, "          %d  %s\n", n, k)
				}
				fmt.Fprintf(out, "empty     %d\n", res.Empty)
			}
			if err != nil {
				return err
			}
			if res.Ops == 0 {
				return refusal{errors.New("no search succeeded")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.URL, "url", "", "server URL: ldap://host:port or ldaps://host:port")
	f.BoolVar(&cfg.StartTLS, "starttls", false, "upgrade ldap:// with StartTLS")
	f.StringVar(&caFile, "ca-file", "", "PEM file of CAs trusted for TLS (default: the system's)")
	f.StringVar(&cfg.BindDN, "bind-dn", "", "DN to bind as (default: anonymous)")
	f.StringVar(&pwEnv, "password-env", "", "name of the environment variable holding the bind password")
	f.StringVar(&pwFile, "password-file", "", "file holding the bind password (first line)")
	f.StringVar(&cfg.Base, "base", "", "search base (default: the server's first naming context)")
	f.StringVar(&cfg.Filter, "filter", "", "filter template with one %d, e.g. (uid=user%d)")
	f.IntVar(&cfg.Range, "range", 0, "indexes are drawn from [0, N)")
	f.StringVar(&attr, "attrs", "cn,mail", "attributes to ask for, comma-separated")
	f.IntVar(&cfg.Conns, "conns", 16, "connections, one search outstanding on each")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to measure")
	f.DurationVar(&cfg.Warmup, "warmup", time.Second, "load before measuring (not counted)")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed for the index sequence (0: random)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}
