package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/station"
)

func (a *app) groupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Directory groups: add, list, members, addmember, delmember, del",
		Long: `group manages groups at cn=NAME,ou=groups under the base DN. Members are
users or groups, named by login name, UPN or DN. Members of the group
"admins" may change the directory over LDAP.`,
	}
	cmd.AddCommand(a.groupAddCommand(), a.groupListCommand(), a.groupMembersCommand(),
		a.groupAddMemberCommand(), a.groupDelMemberCommand(), a.groupDelCommand())
	return cmd
}

func (a *app) groupAddCommand() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "add NAME [--description D]",
		Short: "Add an empty group; an objectSid is assigned",
		Args:  cobra.ExactArgs(1),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			g, err := d.AddGroup(args[0], description)
			if err != nil {
				return dirError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added group %s (%s), objectSid %s\n", g.Name, g.DN, g.SID)
			return nil
		}),
	}
	cmd.Flags().StringVar(&description, "description", "", "what the group is for")
	return cmd
}

func (a *app) groupListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List groups",
		Args:  cobra.NoArgs,
		RunE: a.withDirectory(func(cmd *cobra.Command, _ []string, st *station.Station, d *directory.Store) error {
			groups, err := d.ListGroups(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tMEMBERS\tDESCRIPTION")
			for _, g := range groups {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", g.Name, len(g.Members), dash(g.Description))
			}
			return tw.Flush()
		}),
	}
}

func (a *app) groupMembersCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "members GROUP",
		Short: "List a group's direct members (DNs)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			g, err := d.LookupGroup(cmd.Context(), args[0])
			if err != nil {
				return dirError(err)
			}
			for _, m := range g.Members {
				fmt.Fprintln(cmd.OutOrStdout(), m)
			}
			return nil
		}),
	}
}

func (a *app) groupAddMemberCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "addmember GROUP MEMBER...",
		Short: "Add users or groups to a group (being a member already is fine)",
		Args:  cobra.MinimumNArgs(2),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			for _, m := range args[1:] {
				if err := d.AddGroupMember(cmd.Context(), args[0], m); err != nil {
					return dirError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is a member of %s\n", m, args[0])
			}
			return nil
		}),
	}
}

func (a *app) groupDelMemberCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delmember GROUP MEMBER...",
		Short: "Take users or groups out of a group",
		Args:  cobra.MinimumNArgs(2),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			for _, m := range args[1:] {
				if err := d.RemoveGroupMember(cmd.Context(), args[0], m); err != nil {
					return dirError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is no longer a member of %s\n", m, args[0])
			}
			return nil
		}),
	}
}

func (a *app) groupDelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "del GROUP",
		Short: "Delete a group (its members lose the membership)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withDirectory(func(cmd *cobra.Command, args []string, st *station.Station, d *directory.Store) error {
			if err := d.DeleteGroup(args[0]); err != nil {
				return dirError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted group %s\n", args[0])
			return nil
		}),
	}
}
