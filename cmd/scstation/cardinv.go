package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/inventory"
)

// The card commands in this file work on the station's card inventory and
// need no card in a reader.

// inventoryErr sorts inventory errors for the exit code: an unknown card
// or an illegal state change is a refusal.
func inventoryErr(err error) error {
	var te *inventory.TransitionError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te), errors.Is(err, inventory.ErrNotFound), errors.Is(err, station.ErrCertRevoked):
		return refusal{err}
	case errors.Is(err, station.ErrBadReason):
		return usageError{err}
	}
	return err
}

// cardID accepts a card's inventory ID, or just its GUID (32 hex digits)
// or serial number, as card status prints them. A serial number names the
// one card in the inventory with that serial.
func cardID(st *station.Station, arg string) (string, error) {
	if inventory.CheckID(arg) == nil {
		return arg, nil
	}
	if g, err := hex.DecodeString(strings.ReplaceAll(arg, "-", "")); err == nil && len(g) == 16 {
		return inventory.CardID(g, 0), nil
	}
	n, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		return "", usagef("%q is not a card ID (guid:<32 hex digits>, serial:<number>, or the bare GUID or serial number)", arg)
	}
	inv, err := st.Inventory()
	if err != nil {
		return "", err
	}
	cards, err := inv.List(inventory.Query{})
	if err != nil {
		return "", err
	}
	var ids []string
	for _, c := range cards {
		if uint64(c.Serial) == n {
			ids = append(ids, c.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", refusal{fmt.Errorf("%w: no card with serial number %d", inventory.ErrNotFound, n)}
	case 1:
		return ids[0], nil
	}
	return "", refusal{fmt.Errorf("several cards have serial number %d: %s", n, strings.Join(ids, ", "))}
}

func (a *app) cardInventoryCommand() *cobra.Command {
	var owner, state string
	var limit int
	cmd := &cobra.Command{
		Use:   "inventory [--owner U] [--state S]",
		Short: "List the cards in the station's inventory (states: uninitialized, active, suspended, revoked, terminated)",
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			q := inventory.Query{Owner: owner, Limit: limit}
			if state != "" {
				s, err := inventory.ParseState(state)
				if err != nil {
					return usageError{err}
				}
				q.State = s
			}
			inv, err := st.Inventory()
			if err != nil {
				return err
			}
			cards, err := inv.List(q)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tOWNER\tSTATE\tSERIAL\tCERTS\tUPDATED")
			for _, c := range cards {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", c.ID, dash(printable(c.Owner)), c.State, c.Serial, len(c.Certificates), c.Updated.UTC().Format(time.RFC3339))
			}
			return w.Flush()
		}),
	}
	cmd.Flags().StringVar(&owner, "owner", "", "only this user's cards")
	cmd.Flags().StringVar(&state, "state", "", "only cards in this state")
	cmd.Flags().IntVar(&limit, "limit", 0, "only the N most recently changed cards")
	return cmd
}

func (a *app) cardShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Long:  "card show prints a card's inventory record. ID is the inventory ID (guid:<hex> or serial:<n>),\nor the card's bare serial number or GUID.",
		Short: "Show a card's inventory record: owner, state, certificates and history",
		Args:  cobra.ExactArgs(1),
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			inv, err := st.Inventory()
			if err != nil {
				return err
			}
			id, err := cardID(st, args[0])
			if err != nil {
				return err
			}
			c, err := inv.Get(id)
			if err != nil {
				return inventoryErr(err)
			}
			db, err := st.CADB()
			if err != nil {
				return err
			}
			printCard(cmd.OutOrStdout(), c, func(serial string) string {
				n, ok := new(big.Int).SetString(serial, 16)
				if !ok {
					return "bad serial"
				}
				r, err := db.Get(n)
				if err != nil {
					return err.Error()
				}
				return statusText(r)
			})
			return nil
		}),
	}
}

func printCard(out io.Writer, c *inventory.Card, status func(serial string) string) {
	fmt.Fprintf(out, "Card %s\n", c.ID)
	fmt.Fprintf(out, "  owner       %s\n  state       %s\n  serial      %d\n", dash(printable(c.Owner)), c.State, c.Serial)
	if c.GUID != "" {
		fmt.Fprintf(out, "  GUID        %s\n", printable(c.GUID))
	}
	if c.Reader != "" {
		fmt.Fprintf(out, "  reader      %s\n", printable(c.Reader))
	}
	puk := "none stored"
	if len(c.SealedPUK) > 0 {
		puk = "sealed in the inventory"
	}
	fmt.Fprintf(out, "  PUK         %s\n  mgmt key    version %d\n", puk, c.MgmtKeyVersion)
	fmt.Fprintf(out, "  created     %s\n  updated     %s\n", c.Created.UTC().Format(time.RFC3339), c.Updated.UTC().Format(time.RFC3339))
	fmt.Fprintln(out, "Certificates")
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range c.Certificates {
		fmt.Fprintf(w, "  %s\t%s\t%s\tuntil %s\t%s\n", printable(r.Slot), printable(r.Serial), printable(r.Template), r.NotAfter.UTC().Format(time.RFC3339), status(r.Serial))
	}
	w.Flush()
	fmt.Fprintln(out, "History")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, e := range c.History {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s -> %s\t%s\n", e.Time.UTC().Format(time.RFC3339), dash(printable(e.Actor)), printable(e.Action), e.From, e.To, printable(e.Detail))
	}
	w.Flush()
}

// crlPassphrase lets a lifecycle action publish a CRL with the passphrase
// from --passphrase-file or the environment, but never prompts: without
// either, an encrypted CA key leaves the CRL stale and the command says so.
func (a *app) crlPassphrase(file string) station.PassphraseFunc {
	if file == "" && a.getenv(envPassphrase) == "" {
		return nil
	}
	return a.passphrase(file)
}

// cardAction is the shape of suspend, reinstate and revoke.
func (a *app) cardAction(use, short, long string, act func(ctx context.Context, st *station.Station, id, detail string) (*station.CardResult, error), reason *string) *cobra.Command {
	var detail, passFile string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long + "\n\nA fresh CRL is published when the CA key is unencrypted or its passphrase comes\nfrom --passphrase-file or " + envPassphrase + "; otherwise the command says\nthe CRL is stale until scstation ca crl.",
		Args:  cobra.ExactArgs(1),
		RunE: a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
			if reason != nil && *reason == "" {
				return usagef("--reason is required")
			}
			id, err := cardID(st, args[0])
			if err != nil {
				return err
			}
			st.CRLPassphrase = a.crlPassphrase(passFile)
			res, err := act(cmd.Context(), st, id, detail)
			if err != nil {
				return inventoryErr(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "card %s is %s; %d certificate(s) changed\n", res.Card.ID, res.Card.State, len(res.Changed))
			for _, r := range res.Changed {
				fmt.Fprintf(out, "  %x %s\n", r.Serial, statusText(r))
			}
			switch {
			case res.CRL != nil:
				fmt.Fprintf(out, "CRL #%s published (%d entries)\n", res.CRL.Number, len(res.CRL.RevokedCertificateEntries))
			case res.CRLErr != nil:
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the published CRL is stale: %v\n", res.CRLErr)
			}
			return nil
		}),
	}
	if reason == nil {
		cmd.Flags().StringVar(&detail, "detail", "", "why, in plain words, for the history and the audit log")
	} else {
		cmd.Flags().StringVar(reason, "reason", "", "RFC 5280 reason: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn")
	}
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the CA key passphrase, to publish the CRL")
	cmd.MarkFlagFilename("passphrase-file")
	return cmd
}

func (a *app) cardLifecycleCommands() []*cobra.Command {
	var reason string
	return []*cobra.Command{
		a.cardInventoryCommand(),
		a.cardShowCommand(),
		a.cardAction("suspend ID [--detail D]", "Suspend a card: put its certificates on hold (certificateHold)",
			"card suspend puts every valid certificate of the card on hold and marks it suspended;\nreinstate lifts the hold.",
			func(ctx context.Context, st *station.Station, id, detail string) (*station.CardResult, error) {
				return st.SuspendCard(ctx, id, detail)
			}, nil),
		a.cardAction("reinstate ID [--detail D]", "Reinstate a suspended card: lift the hold on its certificates",
			"card reinstate releases the holds on a suspended card's certificates and marks it active.",
			func(ctx context.Context, st *station.Station, id, detail string) (*station.CardResult, error) {
				return st.ReinstateCard(ctx, id, detail)
			}, nil),
		a.cardAction("revoke ID --reason R", "Revoke every certificate of a card for good, and mark it revoked",
			"card revoke revokes every certificate of the card that is not already revoked\n(including those on hold) with the reason, and marks the card revoked.",
			func(ctx context.Context, st *station.Station, id, _ string) (*station.CardResult, error) {
				r, err := pki.ParseRevocationReason(reason)
				if err != nil {
					return nil, usageError{err}
				}
				if r == pki.ReasonCertificateHold || r == pki.ReasonRemoveFromCRL {
					return nil, usagef("--reason %s: use scstation card suspend or reinstate", strings.ToLower(reason))
				}
				return st.RevokeCard(ctx, id, r)
			}, &reason),
	}
}
