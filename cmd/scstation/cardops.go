package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

// managedFlags are what the card actions on this station's cards share:
// where the card is, the officer, and how secrets come in.
type managedFlags struct {
	vcard     string
	pinStdin  bool
	randomPIN bool
	officer   officerFlags

	stdinSecrets *secretReader
}

func (f *managedFlags) register(cmd *cobra.Command, withPIN bool) {
	cmd.Flags().StringVar(&f.vcard, "vcard", "", "the card is the virtual card with this state file (in-process)")
	cmd.MarkFlagFilename("vcard")
	if withPIN && cmd.Flags().Lookup("pin-stdin") == nil {
		cmd.Flags().BoolVar(&f.pinStdin, "pin-stdin", false, "read the PIN from standard input")
	}
	f.officer.register(cmd)
}

func (f *managedFlags) secrets(a *app, cmd *cobra.Command) func(bool) *secretReader {
	return func(fromStdin bool) *secretReader {
		if !fromStdin {
			return a.secretReader(cmd, false)
		}
		if f.stdinSecrets == nil {
			f.stdinSecrets = a.secretReader(cmd, true)
		}
		return f.stdinSecrets
	}
}

// cardRef resolves --vcard or --reader (the only reader with a card other
// than the officer's).
func (f *managedFlags) cardRef(reader string) (station.CardRef, error) {
	if f.vcard != "" {
		if reader != "" {
			return station.CardRef{}, usagef("--reader and --vcard contradict each other")
		}
		vs, err := virtual.LoadState(f.vcard)
		if err != nil {
			return station.CardRef{}, usageError{fmt.Errorf("--vcard: %w", err)}
		}
		return station.CardRef{Reader: "virtual card " + f.vcard, Card: virtual.New(vs, f.vcard)}, nil
	}
	pc, err := pcsc()
	if err != nil {
		return station.CardRef{}, err
	}
	defer pc.Release()
	r, err := chooseUserReader(pc, reader, f.officer.reader)
	if err != nil {
		return station.CardRef{}, err
	}
	return station.CardRef{Reader: r}, nil
}

// signedIn runs body with the station open and the officer signed in.
func (a *app) signedIn(f *managedFlags, body func(ctx context.Context, cmd *cobra.Command, args []string, st *station.Station) error) func(*cobra.Command, []string) error {
	return a.withStation(func(cmd *cobra.Command, args []string, st *station.Station) error {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		if err := a.signIn(ctx, st, &f.officer, f.secrets(a, cmd)); err != nil {
			return err
		}
		defer st.SignOut()
		return enrollErr(body(ctx, cmd, args, st))
	})
}

// extendCardCommand adds the actions on this station's cards to "card":
// renew and replace, and --managed variants of unblock and reset (which
// otherwise work on any card, with the PUK from the user or by erasing it).
func (a *app) extendCardCommand(root *cobra.Command) {
	cardCmd, _, err := root.Find([]string{"card"})
	if err != nil || cardCmd == root {
		return
	}
	cardCmd.AddCommand(a.cardRenewCommand(), a.cardReplaceCommand())
	for _, c := range cardCmd.Commands() {
		switch c.Name() {
		case "unblock":
			a.managedUnblock(c)
		case "reset":
			a.managedReset(c)
		}
	}
}

const managedHelp = `

With --managed the card is one this station enrolled, and the signed-in
enrollment officer acts on it (see scstation enroll --help for --officer,
--officer-reader and --officer-pin-stdin); --vcard names a virtual card's
state file instead of a reader.`

func (a *app) managedUnblock(c *cobra.Command) {
	var managed bool
	var f managedFlags
	plain := c.RunE
	c.Flags().BoolVar(&managed, "managed", false, "a card of this station: unblock with the PUK the station keeps (officer signed in)")
	c.Flags().BoolVar(&f.randomPIN, "random-pin", false, "with --managed: set a random PIN and show it once")
	f.register(c, false)
	c.Long += managedHelp + ` The new PIN comes from a prompt, from standard input with
--pin-stdin (after the officer's PIN with --officer-pin-stdin), or is random
with --random-pin, shown once. The officer checks the holder's identity first.`
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if !managed {
			if f.vcard != "" || f.randomPIN || f.officer.reader != "" || f.officer.pinStdin || cmd.Flags().Changed("officer") {
				return usagef("--vcard, --random-pin and the officer flags need --managed")
			}
			return plain(cmd, args)
		}
		f.pinStdin, _ = cmd.Flags().GetBool("pin-stdin")
		reader, _ := cmd.Flags().GetString("reader")
		return a.signedIn(&f, func(ctx context.Context, cmd *cobra.Command, _ []string, st *station.Station) error {
			req := station.UnblockRequest{RandomPIN: f.randomPIN}
			if !f.randomPIN {
				pin, err := f.secrets(a, cmd)(f.pinStdin).read("new PIN", true)
				if err != nil {
					return err
				}
				req.PIN = pin
			}
			ref, err := f.cardRef(reader)
			if err != nil {
				return err
			}
			req.CardRef = ref
			res, err := st.UnblockCard(ctx, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "PIN of card %s (%s) set with the stored PUK\n", res.Card.ID, res.Card.Owner)
			if res.PIN != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "New PIN (shown once, give it to %s): %s\n", res.Card.Owner, res.PIN)
			}
			return nil
		})(cmd, args)
	}
}

func (a *app) managedReset(c *cobra.Command) {
	var managed bool
	var f managedFlags
	var reason string
	plain := c.RunE
	c.Flags().BoolVar(&managed, "managed", false, "a card of this station: revoke its certificates and terminate its record too")
	c.Flags().StringVar(&reason, "detail", "", "with --managed: why, for the audit log")
	f.register(c, false)
	c.Long += managedHelp + ` Its certificates are revoked (cessationOfOperation),
the card is erased and gets a new CHUID, and its inventory record is
terminated: the blank card comes back as a new card.`
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if !managed {
			if f.vcard != "" || f.officer.reader != "" || f.officer.pinStdin || cmd.Flags().Changed("officer") || reason != "" {
				return usagef("--vcard, --detail and the officer flags need --managed")
			}
			return plain(cmd, args)
		}
		yes, _ := cmd.Flags().GetBool("yes")
		reader, _ := cmd.Flags().GetString("reader")
		return a.signedIn(&f, func(ctx context.Context, cmd *cobra.Command, _ []string, st *station.Station) error {
			if !yes {
				if !a.stdinTerminal() {
					return usagef("card reset erases the card: confirm with --yes (or run on a terminal to be asked)")
				}
				fmt.Fprint(a.stderr, "Revoke the card's certificates, erase it and terminate its record? [y/N] ")
				line, _ := bufio.NewReader(a.stdin).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					return refusal{fmt.Errorf("not reset")}
				}
			}
			ref, err := f.cardRef(reader)
			if err != nil {
				return err
			}
			res, err := st.ResetCard(ctx, ref, reason)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "card %s (%s) erased and terminated; %d certificate(s) revoked\n", res.Card.ID, res.Card.Owner, len(res.Changed))
			if res.CRLErr != nil {
				fmt.Fprintf(out, "note: %v\n", res.CRLErr)
			}
			return nil
		})(cmd, args)
	}
}

func (a *app) cardRenewCommand() *cobra.Command {
	var reader, passFile string
	var f managedFlags
	cmd := &cobra.Command{
		Use:   "renew [--reader R | --vcard FILE] [--pin-stdin]",
		Short: "New keys and certificates on an active card of this station",
		Long: `card renew renews an active card before its certificates expire: new keys
of the same kind in the same slots, certificates from the same templates on
the officer's request, written to the card; then the old certificates are
revoked as superseded. The card holder's PIN comes from a prompt or
--pin-stdin (after the officer's PIN with --officer-pin-stdin).` + managedHelp,
		Args: cobra.NoArgs,
	}
	cmd.RunE = a.signedIn(&f, func(ctx context.Context, cmd *cobra.Command, _ []string, st *station.Station) error {
		pin, err := f.secrets(a, cmd)(f.pinStdin).read("card holder's PIN", false)
		if err != nil {
			return err
		}
		ref, err := f.cardRef(reader)
		if err != nil {
			return err
		}
		res, err := st.RenewCard(ctx, station.RenewRequest{CardRef: ref, PIN: pin, Passphrase: a.passphrase(passFile)})
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "card %s (%s) renewed\n", res.CardID, res.Owner)
		for i, c := range res.Certificates {
			fmt.Fprintf(cmd.OutOrStdout(), "  %v serial %x, valid to %s\n", res.Slots[i], c.SerialNumber, c.NotAfter.Format("2006-01-02"))
		}
		return nil
	})
	cmd.Flags().StringVar(&reader, "reader", "", "the reader with the card (default: the only one with a card, other than the officer's)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the CA key passphrase (if the key is encrypted)")
	cmd.MarkFlagFilename("passphrase-file")
	f.register(cmd, true)
	return cmd
}

func (a *app) cardReplaceCommand() *cobra.Command {
	var reader, passFile, reasonName, templates, keyAlg string
	var f managedFlags
	cmd := &cobra.Command{
		Use:   "replace LOST-CARD-ID [--reader R | --vcard FILE] [--reason R] [--pin-stdin | --random-pin]",
		Short: "Revoke a lost card and enroll a new one for its owner",
		Long: `card replace revokes the certificates of a lost or broken card (reason
keyCompromise unless --reason says otherwise), terminates its record, and
enrolls the new card in --reader (or --vcard) for the same owner, with the
lost card's templates unless --template says otherwise. The new PIN comes
from a prompt, --pin-stdin, or --random-pin (shown once).` + managedHelp,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = a.signedIn(&f, func(ctx context.Context, cmd *cobra.Command, args []string, st *station.Station) error {
		reason, err := pki.ParseRevocationReason(reasonName)
		if err != nil {
			return usageError{err}
		}
		alg, err := pki.ParseKeyAlgorithm(keyAlg)
		if err != nil {
			return usageError{err}
		}
		if f.pinStdin && f.randomPIN {
			return usagef("--pin-stdin and --random-pin contradict each other")
		}
		req := station.EnrollRequest{Templates: splitList(templates), RandomPIN: f.randomPIN, KeyAlgorithm: alg, Passphrase: a.passphrase(passFile),
			Progress: func(s station.Step) {
				fmt.Fprintf(cmd.OutOrStdout(), "  %-15s %8s  %s\n", s.Name, s.Took.Round(100_000), s.Detail)
			}}
		if !f.randomPIN {
			if req.PIN, err = f.secrets(a, cmd)(f.pinStdin).read("new PIN", true); err != nil {
				return err
			}
		}
		ref, err := f.cardRef(reader)
		if err != nil {
			return err
		}
		req.Reader, req.Card = ref.Reader, ref.Card
		res, err := st.ReplaceCard(ctx, args[0], reason, req)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "card %s revoked (%s) and terminated; new card %s enrolled for %s\n", args[0], reason, res.CardID, res.Owner)
		for i, c := range res.Certificates {
			fmt.Fprintf(out, "  %v serial %x, valid to %s\n", res.Slots[i], c.SerialNumber, c.NotAfter.Format("2006-01-02"))
		}
		if res.PIN != "" {
			fmt.Fprintf(out, "Initial PIN (shown once, give it to %s): %s\n", res.Owner, res.PIN)
		}
		return nil
	})
	cmd.Flags().StringVar(&reader, "reader", "", "the reader with the new card (default: the only one with a card, other than the officer's)")
	cmd.Flags().StringVar(&reasonName, "reason", "keyCompromise", "revocation reason for the lost card's certificates")
	cmd.Flags().StringVar(&templates, "template", "", "templates for the new card (default: the lost card's)")
	cmd.Flags().StringVar(&keyAlg, "key-algorithm", "p256", "card key algorithm: p256, p384, rsa2048")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the CA key passphrase (if the key is encrypted)")
	cmd.MarkFlagFilename("passphrase-file")
	cmd.Flags().BoolVar(&f.randomPIN, "random-pin", false, "set a random PIN and show it once")
	f.register(cmd, true)
	return cmd
}
