package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The station's hash-chained audit log: list, verify",
		Long: `audit reads the append-only audit log: every issuance, revocation, card state
change, PIN unblock, officer sign-in and failed PIN attempt at the station, with
who, what, when, on which card or user, and the outcome. Secrets are never
recorded. Each record is chained to the one before by SHA-256, so that verify
detects altered, removed, reordered or cut-off records.`,
	}
	cmd.AddCommand(a.auditListCommand(), a.auditVerifyCommand())
	return cmd
}

// parseSince reads a point in time: RFC 3339, or a duration back from now
// ("24h", "90m", "7d").
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseUint(days, 10, 16); err == nil {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("%q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a duration (24h, 7d)", s)
}

// printable keeps a stored string from driving the terminal: control
// characters are shown as '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func (a *app) auditListCommand() *cobra.Command {
	var since, until string
	var q audit.Query
	cmd := &cobra.Command{
		Use:   "list [--since T] [--until T] [--user U] [--actor A] [--action A] [--card C] [--limit N]",
		Short: "Print audit records (T: RFC 3339, or a duration back from now like 24h or 7d)",
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			var err error
			now := st.Now()
			if q.Since, err = parseSince(since, now); err != nil {
				return err
			}
			if q.Until, err = parseSince(until, now); err != nil {
				return err
			}
			if q.Limit < 0 {
				return usagef("--limit must not be negative")
			}
			l, err := st.Audit()
			if err != nil {
				return err
			}
			recs, err := l.List(q)
			if err != nil {
				return err
			}
			printAudit(cmd.OutOrStdout(), recs)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only records at or after T")
	f.StringVar(&until, "until", "", "only records before T")
	f.StringVar(&q.User, "user", "", "only records about this user")
	f.StringVar(&q.Actor, "actor", "", `only records by this actor ("cli:root", "officer:alice")`)
	f.StringVar(&q.Action, "action", "", "only this action (cert.issue, cert.revoke, card.state, ...)")
	f.StringVar(&q.Card, "card", "", "only records about this card ID")
	f.IntVar(&q.Limit, "limit", 0, "only the newest N matching records")
	return cmd
}

func printAudit(out io.Writer, recs []audit.Record) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tOUTCOME\tUSER\tCARD\tCERT\tDETAIL")
	for _, r := range recs {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339),
			printable(r.Actor), printable(r.Action), printable(r.Outcome), dash(printable(r.User)),
			dash(printable(r.Card)), dash(printable(r.Cert)), printable(r.Detail))
	}
	w.Flush()
}

func (a *app) auditVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Walk the hash chain: exit 0 when intact, 1 with the first bad record",
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			l, err := st.Audit()
			if err != nil {
				return err
			}
			n, err := l.Verify()
			var te *audit.TamperError
			if errors.As(err, &te) {
				if r, gerr := l.Get(te.Seq); gerr == nil {
					printAudit(cmd.OutOrStdout(), []audit.Record{r})
				}
				return refusal{err}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d records, chain intact\n", n)
			if seq, hash, err := l.Head(); err == nil && seq > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "head: record %d, SHA-256 %x\n", seq, hash)
			}
			return nil
		}),
	}
}
