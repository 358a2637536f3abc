package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/station"
)

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Directory users: add, list, show, del, passwd, disable, enable"}
	cmd.AddCommand(a.userAddCommand(), a.userListCommand(), a.userShowCommand(), a.userDelCommand(), a.userPasswdCommand())
	cmd.AddCommand(a.userDisableCommand(true), a.userDisableCommand(false))
	return cmd
}

// dirError sorts the directory's refusals for the exit code: malformed
// input is a usage error, any other refusal exits 1.
func dirError(err error) error {
	var e *directory.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case directory.ResultInvalidAttributeSyntax, directory.ResultInvalidDNSyntax:
		return usageError{err}
	}
	return refusal{err}
}

var passwordHelp = fmt.Sprintf(`The password is read from standard input with --password-stdin (one line;
the final newline is dropped), else asked for twice on the terminal. It is
never taken from a flag or an environment variable, and never logged. It
needs at least %d characters.`, directory.MinPasswordLength)

// readNewPassword reads a new password from stdin (fromStdin) or the
// terminal. The caller wipes it.
func (a *app) readNewPassword(fromStdin bool) ([]byte, error) {
	if fromStdin {
		data, err := io.ReadAll(io.LimitReader(a.stdin, directory.MaxPasswordLength+3))
		if err != nil {
			return nil, err
		}
		if len(data) > directory.MaxPasswordLength+2 {
			clear(data)
			return nil, usagef("the password on standard input is longer than %d bytes", directory.MaxPasswordLength)
		}
		p := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
		if len(p) == 0 {
			return nil, usagef("no password on standard input")
		}
		if bytes.ContainsAny(p, "\r\n") {
			clear(data)
			return nil, usagef("the password on standard input must be one line")
		}
		return p, nil
	}
	p, err := a.readSecret("New password: ")
	if errors.Is(err, station.ErrNoTerminal) {
		return nil, usagef("a password is needed: use --password-stdin, or run on a terminal")
	}
	if err != nil {
		return nil, err
	}
	q, err := a.readSecret("Again: ")
	if err != nil {
		clear(p)
		return nil, err
	}
	same := bytes.Equal(p, q)
	clear(q)
	if !same {
		clear(p)
		return nil, refusal{errors.New("the passwords differ")}
	}
	return p, nil
}

func (a *app) userAddCommand() *cobra.Command {
	var upn, mail, name string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "add NAME [--upn U] [--mail M] [--name N] [--password-stdin]",
		Short: "Add a user; objectSid and objectGUID are assigned",
		Long: `user add creates a directory user at uid=NAME,ou=people under the base DN.
The UPN defaults to NAME@domain. With --password-stdin the user gets a
password for LDAP binds.

` + passwordHelp,
		Args: cobra.ExactArgs(1),
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			if upn == "" {
				upn = args[0] + "@" + st.Config.Domain
			}
			var pw []byte
			if pwStdin {
				var err error
				if pw, err = a.readNewPassword(true); err != nil {
					return err
				}
				defer clear(pw)
			}
			d, err := st.Directory()
			if err != nil {
				return err
			}
			u, err := d.CreateUser(directory.User{Name: args[0], UPN: upn, Mail: mail, DisplayName: name}, pw)
			if err != nil {
				return dirError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s), objectSid %s\n", u.Name, u.UPN, u.SID)
			return nil
		}),
	}
	cmd.Flags().StringVar(&upn, "upn", "", "userPrincipalName (default NAME@domain)")
	cmd.Flags().StringVar(&mail, "mail", "", "mail address")
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read a password for the user from standard input")
	return cmd
}

func (a *app) userPasswdCommand() *cobra.Command {
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME [--password-stdin]",
		Short: "Set a user's password (for LDAP binds)",
		Long:  "user passwd sets the password of a user (by login name or UPN).\n\n" + passwordHelp,
		Args:  cobra.ExactArgs(1),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			// Refuse an unknown user before asking for anything.
			if _, err := d.User(args[0]); err != nil {
				return dirError(err)
			}
			pw, err := a.readNewPassword(pwStdin)
			if err != nil {
				return err
			}
			defer clear(pw)
			if err := d.SetPassword(args[0], pw); err != nil {
				return dirError(err)
			}
			a.log.Info("password set", "user", args[0])
			fmt.Fprintf(cmd.OutOrStdout(), "password set for %s\n", args[0])
			return nil
		}),
	}
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the new password from standard input")
	return cmd
}

func (a *app) userListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: a.withDirectory(func(cmd *cobra.Command, _ []string, st *station.Station, d *directory.Store) error {
			users, err := d.Users()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tUPN\tMAIL\tDISPLAY NAME\tCERTIFICATES")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", u.Name, u.UPN, dash(u.Mail), dash(u.DisplayName), len(u.Certificates))
			}
			return tw.Flush()
		}),
	}
}

func (a *app) userShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show one user (by login name or UPN)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			u, err := d.User(args[0])
			if err != nil {
				return dirError(err)
			}
			pw := "no"
			if u.HasPassword {
				pw = "yes"
			}
			groups := "-"
			if len(u.Groups) > 0 {
				groups = strings.Join(u.Groups, "\n             ")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dn           %s\nname         %s\nupn          %s\nmail         %s\ndisplayName  %s\nobjectSid    %s\nobjectGUID   %s\ncreated      %s\ncertificates %d\npassword     %s\ngroups       %s\n",
				u.DN, u.Name, u.UPN, dash(u.Mail), dash(u.DisplayName), u.SID, u.GUID, u.Created.Format(time.RFC3339), len(u.Certificates), pw, groups)
			if u.Disabled {
				fmt.Fprintln(cmd.OutOrStdout(), "disabled     yes")
			}
			return nil
		}),
	}
}

func (a *app) userDelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "del NAME",
		Short: "Delete a user (their certificates stay valid until revoked)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			if err := d.DeleteUser(args[0]); err != nil {
				return dirError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", strings.ToLower(args[0]))
			return nil
		}),
	}
}

// userDisableCommand is user disable (disable) or user enable.
func (a *app) userDisableCommand(disable bool) *cobra.Command {
	use, short, done := "enable NAME", "Enable a disabled account again", "enabled"
	if disable {
		use, short, done = "disable NAME", "Disable an account: the KDC refuses its logons and service tickets", "disabled"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

disable sets ACCOUNTDISABLE (0x2) in the account's userAccountControl, as
Active Directory does: the KDC then refuses smart-card and password logons
(KDC_ERR_CLIENT_REVOKED) and service tickets for tickets it issued before.
The account's certificates stay valid (revoke them with scstation ca revoke).
enable clears the flag.`,
		Args: cobra.ExactArgs(1),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			if err := d.SetUserDisabled(args[0], disable); err != nil {
				return dirError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, strings.ToLower(args[0]))
			return nil
		}),
	}
}
