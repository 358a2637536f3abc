package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/station"
)

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Directory users: add, list, show, del"}
	cmd.AddCommand(a.userAddCommand(), a.userListCommand(), a.userShowCommand(), a.userDelCommand())
	return cmd
}

func (a *app) userAddCommand() *cobra.Command {
	var upn, mail, name string
	cmd := &cobra.Command{
		Use:   "add NAME --upn U [--mail M] [--name N]",
		Short: "Add a user; objectSid and objectGUID are assigned",
		Long:  "user add creates a directory user. The UPN defaults to NAME@domain.",
		Args:  cobra.ExactArgs(1),
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			if upn == "" {
				upn = args[0] + "@" + st.Config.Domain
			}
			d, err := st.Directory()
			if err != nil {
				return err
			}
			u, err := d.AddUser(directory.User{Name: args[0], UPN: upn, Mail: mail, DisplayName: name})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s), objectSid %s\n", u.Name, u.UPN, u.SID)
			return nil
		}),
	}
	cmd.Flags().StringVar(&upn, "upn", "", "userPrincipalName (default NAME@domain)")
	cmd.Flags().StringVar(&mail, "mail", "", "mail address")
	cmd.Flags().StringVar(&name, "name", "", "display name")
	return cmd
}

func (a *app) userListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			d, err := st.Directory()
			if err != nil {
				return err
			}
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
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			d, err := st.Directory()
			if err != nil {
				return err
			}
			u, err := d.User(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "name         %s\nupn          %s\nmail         %s\ndisplayName  %s\nobjectSid    %s\nobjectGUID   %s\ncreated      %s\ncertificates %d\n",
				u.Name, u.UPN, dash(u.Mail), dash(u.DisplayName), u.SID, u.GUID, u.Created.Format(time.RFC3339), len(u.Certificates))
			return nil
		}),
	}
}

func (a *app) userDelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "del NAME",
		Short: "Delete a user (their certificates stay valid until revoked)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			d, err := st.Directory()
			if err != nil {
				return err
			}
			if err := d.DeleteUser(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", strings.ToLower(args[0]))
			return nil
		}),
	}
}
