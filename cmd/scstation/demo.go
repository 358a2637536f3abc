package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/station"
)

func (a *app) demoCommand() *cobra.Command {
	var noTUI bool
	var f tuiFlags
	cmd := &cobra.Command{
		Use:   "demo [--dir D] [--no-tui]",
		Short: "Create (if needed) and open a demo realm, EXAMPLE.TEST",
		Long: `demo creates a demo deployment the first time (realm EXAMPLE.TEST, a CA with an
unencrypted key, users officer, alice, bob and carol, 1,000 generated users in
a few groups) and describes it. Without
--dir it lives in $SCSTATION_DIR, else the XDG data home's scstation-demo.
Then it opens the full-screen station (with the embedded services running)
unless --no-tui, which only describes the demo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("dir") && os.Getenv("SCSTATION_DIR") == "" {
				d, err := station.DefaultDir()
				if err != nil {
					return err
				}
				a.dir = filepath.Join(filepath.Dir(d), "scstation-demo")
			}
			if !noTUI {
				if err := a.needTerminal(); err != nil {
					return err
				}
			}
			st, created, err := station.Demo(a.dir, a.log)
			if err != nil {
				return err
			}
			defer st.Close()
			if !noTUI {
				restore, err := a.tuiLog(st)
				if err != nil {
					return err
				}
				defer restore()
				if f.local, err = demoCards(st); err != nil {
					return err
				}
				f.demoPIN = station.DemoOfficerPIN
				return a.runTUI(cmd.Context(), st, f)
			}
			out := cmd.OutOrStdout()
			if created {
				fmt.Fprintf(out, "Created the demo realm in %s\n", st.Dir)
			} else {
				fmt.Fprintf(out, "Demo realm in %s\n", st.Dir)
			}
			fmt.Fprintf(out, "  realm %s, domain %s, base DN %s\n", st.Config.Realm, st.Config.Domain, st.Config.BaseDN())
			if err := printCAState(out, st); err != nil {
				return err
			}
			d, err := st.Directory()
			if err != nil {
				return err
			}
			fmt.Fprintln(out, "  users:")
			for _, du := range station.DemoUsers {
				u, err := d.User(du.Name)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "    %-8s %-22s %s\n", u.Name, u.UPN, u.SID)
			}
			users, err := d.Users()
			if err != nil {
				return err
			}
			if n := len(users) - len(station.DemoUsers); n > 0 {
				fmt.Fprintf(out, "    and %d generated users (scstation user list)\n", n)
			}
			fmt.Fprintf(out, "\nTry:\n  scstation --dir %s ca templates\n  scstation --dir %s serve\n", st.Dir, st.Dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noTUI, "no-tui", false, "set up and describe the demo without opening the full-screen station")
	f.register(cmd.Flags())
	return cmd
}
