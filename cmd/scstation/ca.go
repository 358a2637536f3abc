package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/internal/atomicfile"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

func (a *app) caCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Certificate authority: init, info, install-cert, issue, revoke, crl, list, show, templates",
	}
	cmd.AddCommand(a.caInitCommand(), a.caInfoCommand(), a.caInstallCertCommand(), a.caIssueCommand(),
		a.caRevokeCommand(), a.caCRLCommand(), a.caListCommand(), a.caShowCommand(), a.caTemplatesCommand())
	return cmd
}

func (a *app) caInitCommand() *cobra.Command {
	var ca caFlags
	cmd := &cobra.Command{
		Use:   "init [--csr] [--key-algorithm A] [--no-passphrase]",
		Short: "Create the CA in a data directory that has none (a root, or with --csr a request for a parent CA)",
		Long:  "ca init creates the CA key and a self-signed root, or with --csr a request for a parent CA.\n\n" + passphraseHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := ca.options(a)
			if err != nil {
				return err
			}
			st, err := a.open()
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.InitCA(opts); err != nil {
				return err
			}
			return printCAState(cmd.OutOrStdout(), st)
		},
	}
	ca.register(cmd)
	return cmd
}

func (a *app) caInfoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the CA chain, the configuration and the last CRL",
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Data directory %s\n  realm %s, domain %s, standalone %v\n", st.Dir, st.Config.Realm, st.Config.Domain, st.Config.Standalone)
			fmt.Fprintf(out, "  key %s, encrypted %v\n  CRL %s%s, certificates %s%s\n", st.Config.CA.KeyAlgorithm, st.Config.CA.KeyEncrypted,
				st.Config.CA.BaseURL, pki.PathCRL, st.Config.CA.BaseURL, pki.PathCACert)
			if st.CAState() != station.CAReady {
				return printCAState(out, st)
			}
			chain, err := st.CAChain()
			if err != nil {
				return err
			}
			for i, c := range chain {
				label := "  CA"
				if i > 0 {
					label = "  issuer"
				}
				printCert(out, label, c)
			}
			if data, err := os.ReadFile(st.CRLPath()); err == nil {
				if crl, err := x509ParseCRL(data); err == nil {
					fmt.Fprintf(out, "  last CRL #%s, %d entries, next update %s\n", crl.Number, len(crl.RevokedCertificateEntries), crl.NextUpdate.Format(time.RFC3339))
				}
			} else {
				fmt.Fprintln(out, "  no CRL published yet (scstation ca crl)")
			}
			return nil
		}),
	}
}

func (a *app) caInstallCertCommand() *cobra.Command {
	var certFile, chainFile string
	cmd := &cobra.Command{
		Use:   "install-cert --cert F --chain F",
		Short: "Finish an issuing CA: install the certificate the parent CA issued, and the parent's chain up to the root",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if certFile == "" || chainFile == "" {
				return usagef("--cert and --chain are required")
			}
			certs, err := readCerts(certFile)
			if err != nil {
				return err
			}
			parents, err := readCerts(chainFile)
			if err != nil {
				return err
			}
			st, err := a.open()
			if err != nil {
				return err
			}
			defer st.Close()
			chain, err := st.InstallCACert(certs[0], parents)
			if err != nil {
				return refusal{err}
			}
			out := cmd.OutOrStdout()
			for i, c := range chain {
				label := "  CA"
				if i > 0 {
					label = "  issuer"
				}
				printCert(out, label, c)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&certFile, "cert", "", "the CA certificate the parent issued (PEM or DER)")
	cmd.Flags().StringVar(&chainFile, "chain", "", "the parent's certificates up to and including the root (PEM)")
	cmd.MarkFlagFilename("cert")
	cmd.MarkFlagFilename("chain")
	return cmd
}

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := station.ParseCertificates(data)
	if err != nil {
		return nil, refusal{fmt.Errorf("%s: %w", path, err)}
	}
	return certs, nil
}

func (a *app) caIssueCommand() *cobra.Command {
	var template, csrFile, user, host, outFile, passFile string
	cmd := &cobra.Command{
		Use:   "issue --template T --csr F [--user U] [--out F]",
		Short: "Issue a certificate for a PKCS#10 or enroll-on-behalf-of request",
		Long: `ca issue checks a request and issues a certificate from a template. The request
is a PKCS#10 (PEM or DER), or a CMS SignedData signed by an enrollment agent
whose content is the PKCS#10 (enroll on behalf of). Subject and SANs come from
the directory entry of --user (or the user the agent named), never from the
request. The kdc template takes --host instead of --user.

The certificate is written (PEM, followed by the CA chain) to --out, or to
standard output.

` + passphraseHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if template == "" || csrFile == "" {
				return usagef("--template and --csr are required")
			}
			req, err := readInput(cmd.InOrStdin(), csrFile)
			if err != nil {
				return err
			}
			st, err := a.open()
			if err != nil {
				return err
			}
			defer st.Close()
			issued, err := st.Issue(cmd.Context(), a.passphrase(passFile), template, req, user, host)
			if err != nil {
				return err
			}
			var buf []byte
			for _, c := range issued.Chain {
				buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
			}
			if err := writeOutput(cmd.OutOrStdout(), outFile, buf, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "issued %x to %s (%s)\n", issued.Record.Serial, issued.Record.User, template)
			if issued.PublishErr != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", issued.PublishErr)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&template, "template", "", "certificate template (scstation ca templates lists them)")
	cmd.Flags().StringVar(&csrFile, "csr", "", "request file, or - for standard input")
	cmd.Flags().StringVar(&user, "user", "", "the directory user the certificate is for")
	cmd.Flags().StringVar(&host, "host", "", "the host name, for host templates (kdc)")
	cmd.Flags().StringVar(&outFile, "out", "", "output file (default standard output)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the CA key passphrase")
	cmd.MarkFlagFilename("csr")
	cmd.MarkFlagFilename("out")
	cmd.MarkFlagFilename("passphrase-file")
	return cmd
}

func readInput(stdin io.Reader, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(path)
}

func writeOutput(stdout io.Writer, path string, data []byte, perm os.FileMode) error {
	if path == "" || path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	return atomicfile.Write(path, data, perm)
}

func parseSerial(s string) (*big.Int, error) {
	s = strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(s, ":", "")), "0x")
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 {
		return nil, usagef("serial %q is not a hexadecimal serial number", s)
	}
	return n, nil
}

func (a *app) caRevokeCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke SERIAL --reason R",
		Short: "Revoke a certificate (reasons: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn); --reason release lifts a hold",
		Long: `ca revoke marks a certificate revoked with an RFC 5280 reason. certificateHold
suspends it; "--reason release" (or removeFromCRL) lifts the hold. The next CRL
(scstation ca crl) carries the change.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			serial, err := parseSerial(args[0])
			if err != nil {
				return err
			}
			if reason == "" {
				return usagef("--reason is required")
			}
			st, err := a.open()
			if err != nil {
				return err
			}
			defer st.Close()
			var rec *pki.Record
			if strings.EqualFold(reason, "release") || strings.EqualFold(reason, "removeFromCRL") {
				if rec, err = st.Release(serial); err != nil {
					return err
				}
			} else {
				r, err := pki.ParseRevocationReason(reason)
				if err != nil {
					return usageError{err}
				}
				if rec, err = st.Revoke(serial, r); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%x %s\n", rec.Serial, statusText(rec))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "RFC 5280 revocation reason")
	return cmd
}

func statusText(r *pki.Record) string {
	if r.Status == pki.StatusValid {
		return string(r.Status)
	}
	return fmt.Sprintf("%s (%s, %s)", r.Status, r.Reason, r.RevokedAt.Format(time.RFC3339))
}

func (a *app) caCRLCommand() *cobra.Command {
	var outFile, passFile string
	cmd := &cobra.Command{
		Use:   "crl [--out F]",
		Short: "Sign and publish a new full CRL; also write it (PEM) to --out",
		Long:  "ca crl signs a new CRL, publishes it where the HTTP service serves it, and writes it as PEM to --out if given.\n\n" + passphraseHelp,
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			crl, err := st.PublishCRL(a.passphrase(passFile))
			if err != nil {
				return err
			}
			if outFile != "" {
				if err := writeOutput(cmd.OutOrStdout(), outFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw}), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CRL #%s: %d entries, next update %s, published to %s\n", crl.Number,
				len(crl.RevokedCertificateEntries), crl.NextUpdate.Format(time.RFC3339), st.CRLPath())
			return nil
		}),
	}
	cmd.Flags().StringVar(&outFile, "out", "", "also write the CRL here (PEM), - for standard output")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the CA key passphrase")
	cmd.MarkFlagFilename("out")
	cmd.MarkFlagFilename("passphrase-file")
	return cmd
}

func (a *app) caListCommand() *cobra.Command {
	var user, status, template, expiring string
	cmd := &cobra.Command{
		Use:   "list [--user U] [--status S] [--template T] [--expiring D]",
		Short: "List issued certificates (status valid, revoked or hold; --expiring 30d lists those expiring within 30 days)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := pki.Query{User: user, Template: template}
			if status != "" {
				switch s := pki.Status(strings.ToLower(status)); s {
				case pki.StatusValid, pki.StatusRevoked, pki.StatusOnHold:
					q.Status = s
				default:
					return usagef("--status %q: want valid, revoked or hold", status)
				}
			}
			if expiring != "" {
				var d pki.Duration
				if err := d.UnmarshalText([]byte(expiring)); err != nil {
					return usageError{err}
				}
				q.ExpiringBefore = time.Now().Add(time.Duration(d))
			}
			st, db, err := a.openCADB()
			if err != nil {
				return err
			}
			defer st.Close()
			recs, err := db.List(q)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tUSER\tTEMPLATE\tSTATUS\tNOT AFTER\tAGENT")
			for _, r := range recs {
				status := string(r.Status)
				if r.Status != pki.StatusValid {
					status += " (" + r.Reason.String() + ")"
				}
				fmt.Fprintf(tw, "%x\t%s\t%s\t%s\t%s\t%s\n", r.Serial, r.User, r.Template, status, r.NotAfter.Format("2006-01-02"), dash(r.Agent))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only this user's certificates")
	cmd.Flags().StringVar(&status, "status", "", "valid, revoked or hold")
	cmd.Flags().StringVar(&template, "template", "", "only this template")
	cmd.Flags().StringVar(&expiring, "expiring", "", "only valid certificates expiring within this time (e.g. 30d, 72h)")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) caShowCommand() *cobra.Command {
	var asPEM bool
	cmd := &cobra.Command{
		Use:   "show SERIAL [--pem]",
		Short: "Show one issued certificate's record (and with --pem the certificate)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			serial, err := parseSerial(args[0])
			if err != nil {
				return err
			}
			st, db, err := a.openCADB()
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := db.Get(serial)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asPEM {
				return pem.Encode(out, &pem.Block{Type: "CERTIFICATE", Bytes: r.DER})
			}
			fmt.Fprintf(out, "serial     %x\nsubject    %s\nuser       %s\ntemplate   %s\nagent      %s\nissued     %s\nvalid      %s to %s\nstatus     %s\n",
				r.Serial, r.Subject, r.User, r.Template, dash(r.Agent), r.IssuedAt.Format(time.RFC3339),
				r.NotBefore.Format(time.RFC3339), r.NotAfter.Format(time.RFC3339), statusText(r))
			if c, err := r.Certificate(); err == nil {
				if san, ok, err := pki.SubjectAltNamesOf(c); ok && err == nil {
					if san.UPN != "" {
						fmt.Fprintf(out, "upn        %s\n", san.UPN)
					}
					for _, p := range san.Principals {
						fmt.Fprintf(out, "principal  %s\n", p)
					}
					for _, e := range san.Emails {
						fmt.Fprintf(out, "email      %s\n", e)
					}
					for _, d := range san.DNSNames {
						fmt.Fprintf(out, "dns        %s\n", d)
					}
				}
				if sid, ok, _ := pki.SIDOf(c); ok {
					fmt.Fprintf(out, "sid        %s\n", sid)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asPEM, "pem", false, "print the certificate as PEM")
	return cmd
}

func (a *app) caTemplatesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "templates",
		Short: "List the certificate templates (built-in ones, and ca/templates/*.toml in the data directory)",
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			ts, err := pki.LoadTemplates(st.TemplatesDir())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVALIDITY\tREQUESTERS\tEKU\tSAN\tPUBLISH")
			for _, name := range sortedKeys(ts) {
				t := ts[name]
				v, _ := t.Validity.MarshalText()
				var req []string
				for _, r := range t.Requesters {
					req = append(req, string(r))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, v, strings.Join(req, ","), strings.Join(t.ExtKeyUsage, ","),
					strings.Join(t.SubjectAltNames, ","), strconv.FormatBool(t.Publish))
			}
			return tw.Flush()
		}),
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func x509ParseCRL(data []byte) (*x509.RevocationList, error) {
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	if len(data) == 0 {
		return nil, errors.New("empty CRL")
	}
	return x509.ParseRevocationList(data)
}

// openCADB opens the data directory and its certificate database; the
// caller closes the station.
func (a *app) openCADB() (*station.Station, *pki.DB, error) {
	st, err := a.open()
	if err != nil {
		return nil, nil, err
	}
	db, err := st.CADB()
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, db, nil
}
