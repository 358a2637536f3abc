package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/station"
)

func (a *app) kdcExportCommand() *cobra.Command {
	var out, hostname, passFile string
	var principals []string
	cmd := &cobra.Command{
		Use:   "export --out DIR [--hostname H] [--principal P ...]",
		Short: "Write what an external MIT or Heimdal KDC needs for PKINIT logon with this station's cards",
		Long: `export writes to DIR what an external KDC (config.toml [kdc] mode =
"external") needs to log on this station's users with their cards:

  ` + station.ExportKDCCert + `, ` + station.ExportKDCKey + `  the KDC certificate from the station CA (kdc
                     template: id-pkinit-san krbtgt/REALM@REALM, KDC EKU,
                     the host name H) and its key (mode 0600); kept on a
                     re-export while valid, else replaced
  ` + station.ExportAnchors + `             the trust anchors (the station CA chain)
  ` + station.ExportCRL + `            a freshly signed CRL (pkinit_revoke)
  SVC_HOST.keytab    the keys of each --principal, as kdc keytab writes them
  ` + station.ExportKDCConf + `           the realm entry for kdc.conf: pkinit_identity,
                     pkinit_anchors, pkinit_revoke, pkinit_eku_checking,
                     pkinit_allow_upn, supported_enctypes
  ` + station.ExportKrb5Conf + `          a krb5.conf snippet for the clients

H defaults to [services] hostname. The KDC does not read the directory: on
MIT, create each user with kadmin.local -q "addprinc +requires_preauth
-nokey USER". Run export again (from cron) before the CRL's next update, and
after revoking certificates, so that the KDC sees the revocations.

` + passphraseHelp,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			if out == "" {
				return usagef("--out is required")
			}
			if !st.Config.KDC.External() {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: [kdc] mode is embedded; set mode = \"external\" so that serve does not run its own KDC")
			}
			res, err := st.ExportKDC(cmd.Context(), station.KDCExportOptions{
				Dir: out, Hostname: hostname, Principals: principals, Passphrase: a.passphrase(passFile),
			})
			if errors.Is(err, station.ErrBadExport) {
				return refusal{err}
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			how := "kept"
			if res.Issued {
				how = "issued"
			}
			fmt.Fprintf(w, "KDC certificate %x for %s (%s, valid until %s)\n", res.Certificate.SerialNumber, res.Certificate.DNSNames, how, res.Certificate.NotAfter.UTC().Format("2006-01-02"))
			fmt.Fprintf(w, "CRL #%s, next update %s\n", res.CRL.Number, res.CRL.NextUpdate.UTC().Format("2006-01-02T15:04:05Z"))
			for _, f := range res.Files {
				fmt.Fprintln(w, filepath.Join(res.Dir, f))
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&out, "out", "", "the directory to write to")
	cmd.Flags().StringVar(&hostname, "hostname", "", "the external KDC's DNS name (default [services] hostname)")
	cmd.Flags().StringArrayVar(&principals, "principal", nil, "a service principal whose keytab to write (repeatable)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the CA key passphrase")
	cmd.MarkFlagFilename("out")
	cmd.MarkFlagFilename("passphrase-file")
	return cmd
}
