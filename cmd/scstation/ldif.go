package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/directory/ldif"
	"github.com/scstation/scstation/internal/atomicfile"
	"github.com/scstation/scstation/station"
)

func (a *app) ldifCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ldif",
		Short: "Import and export the directory as LDIF (RFC 2849)",
	}
	cmd.AddCommand(a.ldifImportCommand(), a.ldifExportCommand())
	return cmd
}

func (a *app) ldifImportCommand() *cobra.Command {
	var opts directory.ImportOptions
	cmd := &cobra.Command{
		Use:   "import FILE|- [--batch N] [--skip-existing] [--skip-unknown]",
		Short: "Load LDIF records into the directory",
		Long: `ldif import applies LDIF records (RFC 2849) to the directory: content
records and "changetype: add" create entries, keeping objectSid, objectGUID
and createTimestamp when the LDIF has them (an export restores exactly);
delete, modify and modrdn change entries. Groups come after everything
else, so their members may appear later in the file. memberOf values are
ignored: the directory derives them from member.

Records are committed in batches of --batch. On an error, the records before
the failing one are in the directory and none after it; the command says
which line failed. The base entry, ou=people, ou=groups and cn=admins exist
in every directory: records for them add their members. URL values
("attr:< file://...") are refused.`,
		Args: cobra.ExactArgs(1),
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			var in io.Reader = a.stdin
			if args[0] != "-" {
				f, err := os.Open(a.path(args[0]))
				if err != nil {
					return usageError{err}
				}
				defer f.Close()
				in = f
			}
			d, err := st.Directory()
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := d.ImportLDIF(cmd.Context(), in, opts)
			elapsed := time.Since(start)
			fmt.Fprintf(cmd.OutOrStdout(), "%d added, %d modified, %d deleted, %d renamed, %d merged, %d skipped in %s\n",
				res.Added, res.Modified, res.Deleted, res.Renamed, res.Merged, res.Skipped, elapsed.Round(time.Millisecond))
			if len(res.Dropped) > 0 {
				var names []string
				for n, c := range res.Dropped {
					names = append(names, fmt.Sprintf("%s (%d)", n, c))
				}
				slices.Sort(names)
				fmt.Fprintf(a.stderr, "left out: %s\n", strings.Join(names, ", "))
			}
			var se *ldif.SyntaxError
			if errors.As(err, &se) {
				return usageError{err}
			}
			if err != nil {
				return dirError(err)
			}
			return nil
		}),
	}
	cmd.Flags().IntVar(&opts.BatchSize, "batch", 1000, "records per transaction")
	cmd.Flags().BoolVar(&opts.SkipExisting, "skip-existing", false, "skip entries that exist instead of failing")
	cmd.Flags().BoolVar(&opts.SkipUnknown, "skip-unknown", false, "leave out attributes and object classes the schema does not know (e.g. from slapcat)")
	return cmd
}

func (a *app) ldifExportCommand() *cobra.Command {
	var opts directory.ExportOptions
	var out string
	cmd := &cobra.Command{
		Use:   "export [--out FILE] [--passwords] [--profile openldap]",
		Short: "Write the directory as LDIF",
		Long: `ldif export writes every entry as an LDIF content record, parents before
children and groups after their members, so that ldif import, ldapadd or
slapadd load it in order. Binary and non-ASCII values are base64, long
lines are folded. memberOf (derived) and modification times are left out;
userPassword hashes only with --passwords.

--profile openldap writes what an OpenLDAP slapd with the core, cosine and
inetorgperson schemas plus the upnPrincipal schema accepts: users as
inetOrgPerson + upnPrincipal, groups as groupOfNames (empty groups are left
out), and no Active Directory attributes (objectSid, sAMAccountName, ...).

The output goes to standard output, or to --out (written atomically,
mode 0600).`,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			switch opts.Profile {
			case "", "openldap":
			default:
				return usagef("--profile %q: want openldap, or nothing for the full export", opts.Profile)
			}
			d, err := st.Directory()
			if err != nil {
				return err
			}
			var sb strings.Builder
			var w io.Writer = cmd.OutOrStdout()
			if out != "" {
				w = &sb
			}
			res, err := d.ExportLDIF(cmd.Context(), w, opts)
			if err != nil {
				return err
			}
			if out != "" {
				if err := atomicfile.Write(out, []byte(sb.String()), 0o600); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.stderr, "exported %d entries\n", res.Entries)
			if len(res.Skipped) > 0 {
				fmt.Fprintf(a.stderr, "left out (no %s counterpart): %s\n", opts.Profile, strings.Join(res.Skipped, "; "))
			}
			if !opts.Passwords {
				fmt.Fprintln(a.stderr, "userPassword hashes were not exported (--passwords includes them)")
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of standard output")
	cmd.MarkFlagFilename("out")
	cmd.Flags().BoolVar(&opts.Passwords, "passwords", false, "include userPassword hashes")
	cmd.Flags().StringVar(&opts.Profile, "profile", "", "openldap: entries for OpenLDAP's standard schema")
	return cmd
}
