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

Services live on directory accounts (servicePrincipalName), their keys sealed
under the KDC's master key; the krbtgt and master keys and the
administrators' keys live in kdc/kdc.json in the data directory (mode 0600).
Run these commands while the KDC is serving too: they then go to the serving
process, which owns the stores.`,
	}
	cmd.AddCommand(a.kdcServiceCommand(), a.kdcPrincipalCommand(), a.kdcListCommand(), a.kdcKeytabCommand())
	cmd.AddCommand(a.kdcExportCommand())
	return cmd
}

func (a *app) kdcServiceCommand() *cobra.Command {
	var account string
	runAdd := a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
		if !strings.Contains(args[0], "/") {
			return usagef("a service principal has the form service/host, not %q", args[0])
		}
		name, realm, hasRealm := strings.Cut(args[0], "@")
		if hasRealm && realm != st.Config.Realm {
			return usagef("%s is not in the realm %s", args[0], st.Config.Realm)
		}
		info, err := st.AddService(name, account)
		if err != nil {
			return dirError(err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s@%s kvno %d on %s\n", name, st.Config.Realm, info.KVNO, info.DN)
		return nil
	})
	long := `service add gives the service principal SPN (such as host/station.example.test)
new random aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96 and
aes256-cts-hmac-sha384-192 keys with the next key version, keeping the
previous version for tickets already issued. Export them with scstation kdc
keytab.

As in Active Directory, the service lives on a directory account: the SPN is
a servicePrincipalName value of the account (--account, default
svc-SERVICE-HOST, created when missing), and the KDC finds the service by it
(case-insensitively, as AD does). The keys are kept on the account sealed
under the KDC's master key (in kdc/kdc.json), and are never readable over
LDAP. All SPNs of one account share its keys. A service registered in
kdc.json by an older version moves to the directory here.`
	add := &cobra.Command{
		Use:   "add SPN [--account NAME]",
		Short: "Register a service principal on a directory account with new random keys",
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE:  runAdd,
	}
	add.Flags().StringVar(&account, "account", "", "the directory account (login name) that holds the SPN and keys")
	cmd := &cobra.Command{
		Use:   "service add SPN [--account NAME]",
		Short: "Service principals: kdc service add SPN (kdc service SPN is the same)",
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE:  runAdd,
	}
	cmd.Flags().StringVar(&account, "account", "", "the directory account (login name) that holds the SPN and keys")
	cmd.AddCommand(add)
	return cmd
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
			dir, err := st.Directory()
			if err != nil {
				return err
			}
			if sv, err := dir.ServiceBySPN(cmd.Context(), args[0]); err == nil {
				return refusal{fmt.Errorf("%s is a service on %s, not a password principal", args[0], sv.DN)}
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
		Long: `list shows every service (with the directory account that holds it, or
kdc.json for one registered by an older version) and every password
principal, with its newest key version.`,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			services, err := st.Services()
			if err != nil {
				return err
			}
			store, err := st.KDCStore()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PRINCIPAL\tKIND\tKVNO\tACCOUNT")
			for _, sv := range services {
				where := "kdc.json"
				if sv.DN != "" {
					where = sv.DN
				}
				if sv.Disabled {
					where += " (disabled)"
				}
				fmt.Fprintf(w, "%s@%s\tservice\t%d\t%s\n", sv.SPN, st.Config.Realm, sv.KVNO, where)
			}
			for _, name := range store.Names() {
				p, err := store.LookupUser(cmd.Context(), name)
				if errors.Is(err, kdc.ErrUnknownPrincipal) {
					continue // a service, listed above
				}
				if err != nil {
					return err
				}
				kvno := 0
				for _, k := range p.Keys {
					kvno = max(kvno, k.KVNO)
				}
				fmt.Fprintf(w, "%s@%s\tpassword\t%d\tkdc.json\n", name, st.Config.Realm, kvno)
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
			kt, err := st.ServiceKeytab(name)
			if errors.Is(err, kdc.ErrUnknownPrincipal) {
				return refusal{fmt.Errorf("no principal %s@%s in the KDC (scstation kdc service add %s creates a service)", name, st.Config.Realm, name)}
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
	cmd.MarkFlagFilename("out")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return cmd
}
