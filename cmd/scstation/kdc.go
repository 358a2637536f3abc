package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/station"
)

func (a *app) kdcCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kdc",
		Short: "The embedded KDC's principals: services, administrators, keytabs",
		Long: `kdc manages the principals the embedded KDC holds keys for: services
(host/station.example.test) with random keys, and administrators who log on
with a password. Users log on with smart cards and need nothing here: the KDC
finds them in the directory.

The keys live in kdc/kdc.json in the data directory (mode 0600). Run these
commands while the KDC is not serving: the store belongs to one process.`,
	}
	cmd.AddCommand(a.kdcServiceCommand(), a.kdcPrincipalCommand(), a.kdcListCommand(), a.kdcKeytabCommand())
	cmd.AddCommand(a.kdcExportCommand())
	return cmd
}

func (a *app) kdcServiceCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "service SPN",
		Short: "Create a service principal with random keys, or give it new ones",
		Long: `service creates the service principal SPN (such as host/station.example.test)
with random aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96 and
aes256-cts-hmac-sha384-192 keys. For an existing service it makes new keys
with the next key version, keeping the previous version for tickets already
issued. Export the keys with scstation kdc keytab.`,
		Args: cobra.ExactArgs(1),
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			if !strings.Contains(args[0], "/") {
				return usagef("a service principal has the form service/host, not %q", args[0])
			}
			store, err := st.KDCStore()
			if err != nil {
				return err
			}
			kvno, err := store.AddService(args[0])
			if err != nil {
				return refusal{err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s kvno %d\n", args[0], st.Config.Realm, kvno)
			return nil
		}),
	}
}

func (a *app) kdcPrincipalCommand() *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "principal NAME [--password-stdin]",
		Short: "Create a password principal (an administrator), or change its password",
		Long: `principal creates NAME (such as admin) with keys derived from a password
(encrypted-timestamp pre-authentication, as kinit with a password uses), or
changes its password.

` + passwordHelp,
		Args: cobra.ExactArgs(1),
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			store, err := st.KDCStore()
			if err != nil {
				return err
			}
			pw, err := a.readNewPassword(fromStdin)
			if err != nil {
				return err
			}
			defer clear(pw)
			kvno, err := store.AddPrincipal(args[0], pw)
			if err != nil {
				return refusal{err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s kvno %d\n", args[0], st.Config.Realm, kvno)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func (a *app) kdcListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the KDC's services and password principals",
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			store, err := st.KDCStore()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PRINCIPAL\tKIND\tKVNO")
			for _, name := range store.Names() {
				kind := "service"
				p, err := store.LookupService(cmd.Context(), name)
				if errors.Is(err, kdc.ErrUnknownPrincipal) {
					kind = "password"
					p, err = store.LookupUser(cmd.Context(), name)
				}
				if err != nil {
					return err
				}
				kvno := 0
				for _, k := range p.Keys {
					kvno = max(kvno, k.KVNO)
				}
				fmt.Fprintf(w, "%s@%s\t%s\t%d\n", name, st.Config.Realm, kind, kvno)
			}
			return w.Flush()
		}),
	}
}

func (a *app) kdcKeytabCommand() *cobra.Command {
	var principal, out string
	var force bool
	cmd := &cobra.Command{
		Use:   "keytab --principal P --out F",
		Short: "Export a principal's keys as an MIT keytab",
		Long: `keytab writes the keys of the service (or password principal) P to the file
F in the MIT keytab format that klist -k, kvno -k, sshd and Apache read, with
mode 0600. P may be given with or without @REALM. An existing F is kept
unless --force.`,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			if principal == "" || out == "" {
				return usagef("--principal and --out are required")
			}
			name, realm, hasRealm := strings.Cut(principal, "@")
			if hasRealm && realm != st.Config.Realm {
				return usagef("%s is not in the realm %s", principal, st.Config.Realm)
			}
			store, err := st.KDCStore()
			if err != nil {
				return err
			}
			kt, err := store.Keytab(name)
			if errors.Is(err, kdc.ErrUnknownPrincipal) {
				return refusal{fmt.Errorf("no principal %s@%s in the KDC (scstation kdc service %s creates a service)", name, st.Config.Realm, name)}
			}
			if err != nil {
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(out, flags, 0o600)
			if errors.Is(err, os.ErrExist) {
				return refusal{fmt.Errorf("%s exists (use --force to replace it)", out)}
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(kt); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s → %s\n", name, st.Config.Realm, out)
			return nil
		}),
	}
	cmd.Flags().StringVar(&principal, "principal", "", "the principal, such as host/station.example.test")
	cmd.Flags().StringVar(&out, "out", "", "the keytab file to write")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return cmd
}
