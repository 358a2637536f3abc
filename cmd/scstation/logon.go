package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

func (a *app) logonCommand() *cobra.Command {
	var (
		o                         station.LogonOptions
		certFile, keyFile, caFile string
		keytabFile                string
		pinStdin                  bool
	)
	cmd := &cobra.Command{
		Use:   "logon --user U [--reader R --pin-stdin | --cert F --key F] [--kdc ADDR] [--mode dh|rsa] [--service S] [--ccache F]",
		Short: "Log a user on with PKINIT (smart card or key file) and show each step",
		Long: `logon does a Kerberos smart-card logon (PKINIT) as a workstation would, and
prints each step with its timing: the PIN verified on the card, the
certificate read, the AS-REQ signed and sent, the KDC's reply verified, the
TGT, and with --service a service ticket (checked with the service's keys
when --keytab is given). On failure it says why in plain words.

The identity is the card in --reader (its PIV Authentication key and
certificate, slot 9A) or the files --cert and --key. --mode dh (default)
uses Diffie-Hellman; --mode rsa public-key encryption mode (the KDC encrypts
the reply key to the certificate; the key must be RSA).

The KDC is --kdc or the station's services.kdc, the realm the station's; the
KDC's certificate must chain to the station CA (or to --ca). --ccache writes
the tickets to an MIT credential cache (mode 0600) that klist reads.

` + pinInputHelp + `

Exit codes: 0 logged on, 1 refused (the KDC said no, wrong PIN), 2 an
environment error (no reader, no KDC, unreadable files).`,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			if o.User == "" {
				return usagef("--user is required")
			}
			if (o.Reader == "") == (certFile == "" && keyFile == "") {
				return usagef("give either --reader or --cert and --key")
			}
			if o.Reader == "" && (certFile == "" || keyFile == "") {
				return usagef("--cert and --key go together")
			}
			if o.Realm == "" {
				o.Realm = st.Config.Realm
			}
			if o.KDC == "" {
				o.KDC = st.Config.Services.KDC
			}
			if o.KDC == "" {
				return usagef("no KDC address: give --kdc (services.kdc is not set)")
			}
			o.Roots = x509.NewCertPool()
			if chain, err := st.CAChain(); err == nil {
				o.Roots.AddCert(chain[len(chain)-1])
			} else if caFile == "" {
				return fmt.Errorf("the station CA (to verify the KDC with): %w; or give --ca", err)
			}
			if caFile != "" {
				certs, err := readCertFile(caFile)
				if err != nil {
					return err
				}
				for _, c := range certs {
					o.Roots.AddCert(c)
				}
			}
			if certFile != "" {
				certs, err := readCertFile(certFile)
				if err != nil {
					return err
				}
				o.Certificate, o.Chain = certs[0], certs[1:]
				pemKey, err := os.ReadFile(keyFile)
				if err != nil {
					return err
				}
				if o.Key, err = pki.ParsePrivateKeyPEM(pemKey, nil); err != nil {
					return fmt.Errorf("%s: %w", keyFile, err)
				}
			}
			if keytabFile != "" {
				if o.Service == "" {
					return usagef("--keytab needs --service")
				}
				kt, err := os.ReadFile(keytabFile)
				if err != nil {
					return err
				}
				if o.ServiceKeys, err = station.KeytabKeys(kt, o.Service); err != nil {
					return fmt.Errorf("%s: %w", keytabFile, err)
				}
			}
			if o.Reader != "" {
				pin, err := a.secretReader(cmd, pinStdin).read("PIN", false)
				if err != nil {
					return err
				}
				o.PIN = pin
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "logon %s@%s at %s (%s)\n", o.User, o.Realm, o.KDC, modeName(o.Mode))
			o.Step = func(s station.LogonStep) {
				fmt.Fprintf(out, "  %9s  %s", ms(s.Took), s.Name)
				if s.Detail != "" {
					fmt.Fprintf(out, ": %s", s.Detail)
				}
				fmt.Fprintln(out)
			}
			rep, err := st.Logon(cmd.Context(), o)
			var le *station.LogonError
			if errors.As(err, &le) {
				fmt.Fprintf(out, "  failed at %s: %s\n", le.Step, le.Reason)
				if le.Refused {
					return refusal{fmt.Errorf("logon refused: %s", le.Reason)}
				}
				return fmt.Errorf("logon failed: %s", le.Reason)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "  %9s  logged on\n", ms(rep.Total))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.User, "user", "", "the user: login name, name@REALM or UPN")
	f.StringVar(&o.Reader, "reader", "", "the PC/SC reader with the user's card")
	f.BoolVar(&pinStdin, "pin-stdin", false, "read the PIN from standard input")
	f.StringVar(&certFile, "cert", "", "the user's certificate (PEM, intermediates after it)")
	f.StringVar(&keyFile, "key", "", "the user's private key (PEM, unencrypted)")
	f.StringVar(&o.KDC, "kdc", "", "the KDC's TCP address (default: the station's services.kdc)")
	f.StringVar(&o.Realm, "realm", "", "the realm (default: the station's)")
	f.StringVar(&caFile, "ca", "", "more trust anchors for the KDC's certificate (PEM)")
	f.StringVar(&o.Mode, "mode", "dh", "dh (Diffie-Hellman) or rsa (public-key encryption mode)")
	f.StringVar(&o.Service, "service", "", "a service principal to get a ticket for, such as host/station.example.test")
	f.StringVar(&keytabFile, "keytab", "", "the service's keytab, to decrypt the service ticket with")
	f.StringVar(&o.CCache, "ccache", "", "write the tickets to this MIT credential cache file")
	return cmd
}

func modeName(m string) string {
	if m == "rsa" {
		return "PKINIT public-key mode"
	}
	return "PKINIT Diffie-Hellman"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func readCertFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := station.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return certs, nil
}
