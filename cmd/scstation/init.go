package main

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

type caFlags struct {
	keyAlg, passFile, name, baseURL string
	noPassphrase, subordinate       bool
}

func (f *caFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.keyAlg, "key-algorithm", "p256", "CA key: rsa2048, rsa3072, rsa4096, p256 or p384")
	cmd.Flags().StringVar(&f.passFile, "passphrase-file", "", "file holding the passphrase that encrypts the CA key")
	cmd.Flags().BoolVar(&f.noPassphrase, "no-passphrase", false, "store the CA key unencrypted (demos and tests only)")
	cmd.Flags().BoolVar(&f.subordinate, "csr", false, "make an issuing CA under an existing root: write a request for the parent CA")
	cmd.Flags().StringVar(&f.name, "name", "", "CA common name (default \"<REALM> CA\")")
	cmd.MarkFlagFilename("passphrase-file")
}

func (f *caFlags) options(a *app) (station.CAOptions, error) {
	alg, err := pki.ParseKeyAlgorithm(f.keyAlg)
	if err != nil {
		return station.CAOptions{}, usageError{err}
	}
	opts := station.CAOptions{KeyAlgorithm: alg, Subordinate: f.subordinate, Name: f.name, BaseURL: f.baseURL}
	if !f.noPassphrase {
		opts.Passphrase = a.passphrase(f.passFile)
	} else if f.passFile != "" {
		return opts, usagef("--no-passphrase and --passphrase-file contradict each other")
	}
	return opts, nil
}

func (a *app) initCommand() *cobra.Command {
	var realm, domain string
	var standalone bool
	var ca caFlags
	var officer officerFlags
	cmd := &cobra.Command{
		Use:   "init --domain D [--realm R] [--standalone] [--no-passphrase] [--officer NAME [--officer-reader R]]",
		Short: "Create a data directory: configuration, CA, and room for directory, KDC and inventory",
		Long: `init creates a new data directory. It refuses to touch one that is not empty.

The realm defaults to the domain in capitals. --standalone publishes
certificates to files instead of the directory. --csr makes the CA an issuing
CA under an existing root: have the parent sign ca/ca.csr, then run
scstation ca install-cert.

` + passphraseHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if domain == "" {
				return usagef("--domain is required")
			}
			opts, err := ca.options(a)
			if err != nil {
				return err
			}
			st, err := station.Init(a.dir, station.InitOptions{Realm: realm, Domain: domain, Standalone: standalone, CA: opts, Log: a.log})
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created %s\n  realm %s, domain %s, base DN %s\n", st.Dir, st.Config.Realm, st.Config.Domain, st.Config.BaseDN())
			if err := printCAState(out, st); err != nil {
				return err
			}
			if officer.name != "" {
				return a.bootstrapOfficer(cmd, st, &officer, opts.Passphrase)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&officer.name, "officer", "", "make this user the first enrollment officer, with an agent key on a card")
	cmd.Flags().StringVar(&officer.reader, "officer-reader", "", "the reader with the officer's card (default: a virtual card in DIR/vcards)")
	cmd.Flags().BoolVar(&officer.pinStdin, "officer-pin-stdin", false, "read the officer card's new PIN from standard input")
	cmd.Flags().StringVar(&realm, "realm", "", "Kerberos realm (default: the domain in capitals)")
	cmd.Flags().StringVar(&domain, "domain", "", "DNS domain, e.g. example.test")
	cmd.Flags().BoolVar(&standalone, "standalone", false, "standalone CA: publish certificates to files, not the directory")
	cmd.Flags().StringVar(&ca.baseURL, "base-url", "", "URL where the HTTP service is reached; issued certificates point at its CRL (default http://127.0.0.1:1080)")
	ca.register(cmd)
	return cmd
}

func printCAState(out io.Writer, st *station.Station) error {
	switch st.CAState() {
	case station.CAPending:
		fmt.Fprintf(out, "  CA request written to %s\n  have the parent CA sign it, then: scstation ca install-cert --cert F --chain F\n", st.CSRPath())
	case station.CAReady:
		chain, err := st.CAChain()
		if err != nil {
			return err
		}
		printCert(out, "  CA", chain[0])
	}
	return nil
}

func printCert(out io.Writer, label string, c *x509.Certificate) {
	fp := sha256.Sum256(c.Raw)
	fmt.Fprintf(out, "%s %s\n    serial %x, valid %s to %s\n    SHA-256 %X\n", label, c.Subject, c.SerialNumber,
		c.NotBefore.Format("2006-01-02"), c.NotAfter.Format("2006-01-02"), fp)
}
