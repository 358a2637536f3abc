package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

const readerHelp = `--reader names a PC/SC reader (exactly, or by a part of its name that fits
only one reader). Without it the command uses the only reader with a card,
and lists the readers when there are several.`

const pinInputHelp = `Secrets come from prompts on the terminal, or with --pin-stdin from standard
input, one per line. They never come from a flag or the environment, and
never appear in output or logs.`

func (a *app) cardCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "card",
		Short: "PIV cards: list, status, pin, unblock, reset, renew, replace; the inventory: inventory, show, suspend, reinstate, revoke",
		Long: `card talks to PIV smart cards in the PC/SC readers of this machine (through
pcscd). A virtual card (scstation vcard run) is in a reader like any other.
renew and replace (and unblock and reset with --managed) act on the cards
this station enrolled; inventory, show, suspend, reinstate and revoke work on
the station's card inventory and need no card in a reader.

A PIN or PUK a card refuses is recorded in the station's audit log
(pin.failed: the card, the reader, the tries left; never the PIN) when
there is a data directory.

Exit codes: 0 done, 1 refused (wrong PIN or PUK, blocked, PIN policy),
2 usage or environment (pcscd not running, no such reader, no card).`,
	}
	cmd.AddCommand(a.cardListCommand(), a.cardStatusCommand(), a.cardPINCommand(),
		a.cardUnblockCommand("unblock", false), a.cardResetCommand())
	cmd.AddCommand(a.cardLifecycleCommands()...)
	return cmd
}

// cardErr sorts card errors for the exit code: a wrong or blocked PIN or
// PUK, and what the card refuses, exit 1; a missing pcscd, reader or card
// exit 2.
func cardErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *card.AuthError
	switch {
	case errors.As(err, &ae):
		what := ae.What
		if what == "" {
			what = "PIN"
		}
		switch ae.Retries {
		case 0:
			return refusal{fmt.Errorf("wrong %s — the %s is now blocked; %s", what, what, blockedHint(what))}
		case 1:
			return refusal{fmt.Errorf("wrong %s — 1 try left", what)}
		}
		return refusal{fmt.Errorf("wrong %s — %d tries left", what, ae.Retries)}
	case errors.Is(err, card.ErrNoService), errors.Is(err, card.ErrNoReader), errors.Is(err, card.ErrNoCard),
		errors.Is(err, card.ErrCardInUse), errors.Is(err, card.ErrCardRemoved):
		return usageError{err}
	case errors.Is(err, card.ErrBlocked), errors.Is(err, card.ErrWeakPIN), errors.Is(err, card.ErrNotSupported),
		errors.Is(err, card.ErrConditions), errors.Is(err, card.ErrSecurityStatus),
		errors.Is(err, card.ErrWrongManagementKey):
		return refusal{err}
	}
	return err
}

func blockedHint(what string) string {
	if what == "PUK" {
		return "only a reset (scstation card reset) makes the card usable again, and it erases its keys and certificates"
	}
	return "unblock it with the PUK: scstation card pin unblock"
}

// pcsc connects to pcscd.
func pcsc() (*card.Context, error) {
	ctx, err := card.EstablishContext()
	if err != nil {
		return nil, cardErr(err)
	}
	return ctx, nil
}

// matchReaders returns the readers that name matches: exactly, else as a
// case-insensitive part of the name.
func matchReaders(readers []string, name string) []string {
	for _, r := range readers {
		if r == name {
			return []string{r}
		}
	}
	var m []string
	for _, r := range readers {
		if strings.Contains(strings.ToLower(r), strings.ToLower(name)) {
			m = append(m, r)
		}
	}
	return m
}

func listOf(readers []string) string {
	return "\n  " + strings.Join(readers, "\n  ")
}

// chooseReader resolves --reader, or finds the only reader with a card.
func chooseReader(ctx *card.Context, name string) (string, error) {
	readers, err := ctx.ListReaders()
	if err != nil {
		return "", cardErr(err)
	}
	if len(readers) == 0 {
		return "", usagef("no PC/SC readers (for a virtual card: scstation vcard run)")
	}
	if name != "" {
		switch m := matchReaders(readers, name); len(m) {
		case 0:
			return "", usagef("no reader %q; the readers are:%s", name, listOf(readers))
		case 1:
			return m[0], nil
		default:
			return "", usagef("--reader %q fits several readers:%s", name, listOf(m))
		}
	}
	var with []string
	for _, r := range readers {
		info, err := ctx.Inspect(r, false)
		if err != nil {
			if errors.Is(err, card.ErrNoService) {
				return "", cardErr(err)
			}
			continue // the reader went away meanwhile
		}
		if info.Present {
			with = append(with, r)
		}
	}
	switch len(with) {
	case 0:
		return "", usagef("no card in any reader:%s", listOf(readers))
	case 1:
		return with[0], nil
	}
	return "", usagef("cards are in several readers; choose one with --reader:%s", listOf(with))
}

// openCard opens the PIV application of the card in the chosen reader.
// The caller closes the PIV and then the context.
func openCard(readerFlag string) (*card.Context, *card.PIV, string, error) {
	ctx, err := pcsc()
	if err != nil {
		return nil, nil, "", err
	}
	reader, err := chooseReader(ctx, readerFlag)
	if err != nil {
		ctx.Release()
		return nil, nil, "", err
	}
	c, err := ctx.Connect(reader)
	if err != nil {
		ctx.Release()
		return nil, nil, "", cardErr(err)
	}
	p, err := card.OpenPIV(c)
	if err != nil {
		c.Close()
		ctx.Release()
		if errors.Is(err, card.ErrNotFound) {
			return nil, nil, "", usageError{fmt.Errorf("the card in %s: %w", reader, err)}
		}
		return nil, nil, "", cardErr(err)
	}
	return ctx, p, reader, nil
}

// withCard runs body with the PIV application of the card in the reader
// --reader chooses.
func withCard(reader *string, body func(cmd *cobra.Command, p *card.PIV, reader string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, p, r, err := openCard(*reader)
		if err != nil {
			return err
		}
		defer ctx.Release()
		defer p.Close()
		return cardErr(body(cmd, p, r))
	}
}

func (a *app) cardListCommand() *cobra.Command {
	var reader string
	cmd := &cobra.Command{
		Use:   "list [--reader R]",
		Short: "List the PC/SC readers and the cards in them",
		Long: `card list shows each PC/SC reader, whether a card is in it and its ATR, and
for PIV cards the serial number and firmware version when the card tells
them (Yubico extensions). --reader lists only the readers whose names
contain R.

Looking at a PIV card selects its PIV application, which ends a PIN session
another program may have open on that card.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, err := pcsc()
			if err != nil {
				return err
			}
			defer ctx.Release()
			readers, err := ctx.ListReaders()
			if err != nil {
				return cardErr(err)
			}
			if reader != "" {
				readers = matchReaders(readers, reader)
				if len(readers) == 0 {
					return usagef("no reader %q", reader)
				}
			}
			out := cmd.OutOrStdout()
			if len(readers) == 0 {
				fmt.Fprintln(out, "no PC/SC readers")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "READER\tCARD\tSERIAL\tATR")
			for _, r := range readers {
				info, err := ctx.Inspect(r, true)
				if err != nil {
					if errors.Is(err, card.ErrNoService) {
						return cardErr(err)
					}
					fmt.Fprintf(tw, "%s\t(%v)\t\t\n", r, err)
					continue
				}
				kind, serial := "no card", ""
				switch {
				case info.InUse:
					kind = "in use by another program"
				case info.Present && info.Yubico:
					kind = fmt.Sprintf("PIV (firmware %d.%d.%d)", info.Version[0], info.Version[1], info.Version[2])
				case info.PIV:
					kind = "PIV"
				case info.Present:
					kind = "not PIV"
				}
				if info.HasSerial {
					serial = fmt.Sprint(info.Serial)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%X\n", r, kind, serial, info.ATR)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&reader, "reader", "", "list only readers whose names contain this")
	return cmd
}

func (a *app) cardStatusCommand() *cobra.Command {
	var reader string
	cmd := &cobra.Command{
		Use:   "status [--reader R]",
		Short: "Show a card's identity, PIN and PUK tries, keys and certificates",
		Long: `card status shows the card's CHUID GUID, serial number and firmware version,
the PIN (and, when the card can tell, PUK) tries left, which key slots hold
keys (from Yubico metadata when the card has it, else inferred from the
certificates), and each certificate's subject, issuer and validity. It needs
no PIN.

` + readerHelp,
		Args: cobra.NoArgs,
		RunE: withCard(&reader, func(cmd *cobra.Command, p *card.PIV, _ string) error {
			s, err := card.ReadStatus(p)
			if err != nil {
				return err
			}
			printStatus(cmd.OutOrStdout(), s, time.Now())
			return nil
		}),
	}
	cmd.Flags().StringVar(&reader, "reader", "", "the reader (default: the only one with a card)")
	return cmd
}

func printStatus(out io.Writer, s *card.Status, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	if s.Reader != "" {
		row("reader", "%s", s.Reader)
	}
	if len(s.ATR) > 0 {
		row("ATR", "%X", s.ATR)
	}
	if s.HasSerial {
		row("serial", "%d", s.Serial)
	}
	if s.Yubico {
		row("version", "%d.%d.%d (Yubico extensions)", s.Version[0], s.Version[1], s.Version[2])
	} else {
		row("version", "PIV card without Yubico extensions")
	}
	if s.CHUID != nil {
		row("GUID", "%s", s.CHUID.GUIDString())
		if s.CHUID.Expiration != "" {
			row("CHUID expiry", "%s", s.CHUID.Expiration)
		}
	} else {
		row("GUID", "(no CHUID)")
	}
	def := func(d *bool) string {
		if d != nil && *d {
			return " (factory default)"
		}
		return ""
	}
	switch s.PINRetries {
	case 0:
		row("PIN", "blocked%s — unblock it with the PUK: scstation card pin unblock", def(s.PINDefault))
	case -1:
		row("PIN", "verified%s", def(s.PINDefault))
	default:
		row("PIN", "%s%s", tries(s.PINRetries), def(s.PINDefault))
	}
	switch s.PUKRetries {
	case -1:
		row("PUK", "tries left unknown (the card does not tell)")
	case 0:
		row("PUK", "blocked%s", def(s.PUKDefault))
	default:
		row("PUK", "%s%s", tries(s.PUKRetries), def(s.PUKDefault))
	}
	if s.ManagementKeyAlgorithm != 0 {
		row("management key", "%s%s", s.ManagementKeyAlgorithm, def(s.ManagementKeyDefault))
	}
	tw.Flush()

	fmt.Fprintln(out, "slots:")
	for _, ss := range s.Slots {
		var key string
		switch {
		case ss.Key && s.Metadata:
			key = "key " + ss.Algorithm.String()
			switch ss.Origin {
			case 1:
				key += ", generated on the card"
			case 2:
				key += ", imported"
			}
			key += fmt.Sprintf(", PIN %s, touch %s", ss.PINPolicy, ss.TouchPolicy)
		case ss.Key:
			key = "key (inferred from the certificate)"
		default:
			key = "no key"
		}
		fmt.Fprintf(out, "  %s  %-26s %s\n", ss.Slot, ss.Slot.Name(), key)
		if c := ss.Certificate; c != nil {
			fmt.Fprintf(out, "      certificate  subject %s\n", c.Subject)
			fmt.Fprintf(out, "                   issuer  %s\n", c.Issuer)
			validity := ""
			switch {
			case now.After(c.NotAfter):
				validity = " — EXPIRED"
			case now.Before(c.NotBefore):
				validity = " — NOT YET VALID"
			}
			fmt.Fprintf(out, "                   valid   %s to %s%s\n",
				c.NotBefore.UTC().Format("2006-01-02 15:04 MST"), c.NotAfter.UTC().Format("2006-01-02 15:04 MST"), validity)
			fmt.Fprintf(out, "                   serial  %x\n", c.SerialNumber)
		} else if ss.CertificateError != nil {
			fmt.Fprintf(out, "      certificate  unreadable: %v\n", ss.CertificateError)
		} else {
			fmt.Fprintln(out, "      no certificate")
		}
	}
}

func tries(n int) string {
	if n == 1 {
		return "1 try left"
	}
	return fmt.Sprintf("%d tries left", n)
}

// secretReader hands out PINs and PUKs: lines of standard input with
// --pin-stdin, else prompts on the terminal.
type secretReader struct {
	a     *app
	stdin *bufio.Reader // with --pin-stdin
}

func (a *app) secretReader(cmd *cobra.Command, fromStdin bool) *secretReader {
	s := &secretReader{a: a}
	if fromStdin {
		s.stdin = bufio.NewReader(cmd.InOrStdin())
	}
	return s
}

// read returns the next secret; what names it ("current PIN", "PUK", ...).
// confirm asks twice on a terminal.
func (s *secretReader) read(what string, confirm bool) (string, error) {
	if s.stdin != nil {
		line, err := s.stdin.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return "", usagef("--pin-stdin: no line with the %s on standard input", what)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			return "", usagef("--pin-stdin: the line with the %s is empty", what)
		}
		return line, nil
	}
	ask := func(prompt string) (string, error) {
		b, err := s.a.readSecret(prompt)
		if errors.Is(err, station.ErrNoTerminal) {
			return "", usagef("the %s is needed: use --pin-stdin, or run on a terminal", what)
		}
		if err != nil {
			return "", err
		}
		defer clear(b)
		return string(b), nil
	}
	v, err := ask(strings.ToUpper(what[:1]) + what[1:] + ": ")
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", usagef("no %s given", what)
	}
	if confirm {
		w, err := ask("Again: ")
		if err != nil {
			return "", err
		}
		if w != v {
			return "", refusal{fmt.Errorf("the two entries of the %s differ", what)}
		}
	}
	return v, nil
}

func (a *app) cardPINCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Change the PIN, or unblock it with the PUK",
	}
	cmd.AddCommand(a.cardChangePINCommand(), a.cardUnblockCommand("unblock", true))
	return cmd
}

const newPINHelp = `A new PIN has 6 to 8 characters (digits are safest) and is not trivial: not
one character repeated, not an ascending or descending sequence.`

func (a *app) cardChangePINCommand() *cobra.Command {
	var reader string
	var pinStdin bool
	cmd := &cobra.Command{
		Use:   "change [--reader R] [--pin-stdin]",
		Short: "Change the card's PIN",
		Long: `pin change replaces the PIN of a card: the current PIN, then the new one.
A wrong current PIN uses up a try; the error says how many are left.

` + newPINHelp + `

` + pinInputHelp + ` With --pin-stdin: the current PIN on the first
line, the new PIN on the second.

` + readerHelp,
		Args: cobra.NoArgs,
		RunE: withCard(&reader, func(cmd *cobra.Command, p *card.PIV, r string) error {
			n, err := p.PINRetries()
			if err != nil {
				return err
			}
			if n == 0 {
				return refusal{fmt.Errorf("the PIN of the card in %s is blocked; %s", r, blockedHint("PIN"))}
			}
			if err := a.setNewPIN(cmd, p, r, pinStdin, "current PIN", "PIN", "pin change", p.ChangePIN); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "PIN changed (card in %s)\n", r)
			return nil
		}),
	}
	cmd.Flags().StringVar(&reader, "reader", "", "the reader (default: the only one with a card)")
	cmd.Flags().BoolVar(&pinStdin, "pin-stdin", false, "read the current and the new PIN from standard input, one per line")
	return cmd
}

// setNewPIN reads the secret that allows setting a new PIN (prompt: the
// current PIN or the PUK), then the new PIN, checks the new PIN and calls
// set(secret, newPIN). A failure is audited as during; when the secret
// (what: "PIN" or "PUK") is blocked, the refusal says what is left to do.
func (a *app) setNewPIN(cmd *cobra.Command, p *card.PIV, reader string, pinStdin bool, prompt, what, during string, set func(secret, newPIN string) error) error {
	sr := a.secretReader(cmd, pinStdin)
	secret, err := sr.read(prompt, false)
	if err != nil {
		return err
	}
	pin, err := sr.read("new PIN", true)
	if err != nil {
		return err
	}
	if err := card.CheckNewPIN(pin); err != nil {
		return err
	}
	if err := set(secret, pin); err != nil {
		a.auditPINFailure(p, reader, during, err)
		if errors.Is(err, card.ErrBlocked) && !isAuthError(err) {
			return refusal{fmt.Errorf("the %s is blocked; %s", what, blockedHint(what))}
		}
		return err
	}
	return nil
}

func isAuthError(err error) bool {
	var ae *card.AuthError
	return errors.As(err, &ae)
}

// cardUnblockCommand is "card pin unblock" (and "card unblock").
func (a *app) cardUnblockCommand(use string, underPIN bool) *cobra.Command {
	var reader string
	var pinStdin bool
	cmd := &cobra.Command{
		Use:   use + " [--reader R] [--pin-stdin]",
		Short: "Set a new PIN with the PUK, unblocking the PIN",
		Long: `unblock sets a new PIN with the PUK (RESET RETRY COUNTER), which also
unblocks a blocked PIN: the PUK, then the new PIN. A wrong PUK uses up a
try; with the PUK blocked too, only a reset (which erases the card) is left.

` + newPINHelp + `

` + pinInputHelp + ` With --pin-stdin: the PUK on the first line, the
new PIN on the second.

` + readerHelp,
		Args: cobra.NoArgs,
		RunE: withCard(&reader, func(cmd *cobra.Command, p *card.PIV, r string) error {
			if n, err := p.PUKRetries(); err == nil && n == 0 {
				return refusal{fmt.Errorf("the PUK of the card in %s is blocked; %s", r, blockedHint("PUK"))}
			}
			if err := a.setNewPIN(cmd, p, r, pinStdin, "PUK", "PUK", "unblock with the PUK", p.Unblock); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "PIN set and unblocked (card in %s)\n", r)
			return nil
		}),
	}
	if !underPIN {
		cmd.Short += " (same as card pin unblock)"
	}
	cmd.Flags().StringVar(&reader, "reader", "", "the reader (default: the only one with a card)")
	cmd.Flags().BoolVar(&pinStdin, "pin-stdin", false, "read the PUK and the new PIN from standard input, one per line")
	return cmd
}

func (a *app) cardResetCommand() *cobra.Command {
	var reader string
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset [--reader R] [--yes]",
		Short: "Return the card's PIV application to factory state, erasing it",
		Long: `card reset erases every key and certificate of the card's PIV application and
returns PIN, PUK and management key to their factory defaults (PIN 123456,
PUK 12345678, the default management key). It uses the Yubico reset
command, which the card accepts only with PIN and PUK blocked: reset blocks
them first. Cards without Yubico extensions cannot be reset this way.

It asks for confirmation on a terminal; --yes confirms in advance (needed
when standard input is not a terminal).

` + readerHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			interactive := a.stdinTerminal()
			if !yes && !interactive {
				return usagef("card reset erases the card: confirm with --yes (or run on a terminal to be asked)")
			}
			return withCard(&reader, func(cmd *cobra.Command, p *card.PIV, r string) error {
				if !p.Yubico() {
					return refusal{fmt.Errorf("the card in %s has no Yubico extensions: it cannot be reset from here", r)}
				}
				if !yes {
					what := "the card in " + r
					if serial, ok := p.Serial(); ok {
						what += fmt.Sprintf(" (serial %d)", serial)
					}
					fmt.Fprintf(a.stderr, "Erase all keys and certificates of %s and restore the factory PIN, PUK and management key? [y/N] ", what)
					line, _ := bufio.NewReader(a.stdin).ReadString('\n')
					if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
						return refusal{errors.New("not reset")}
					}
				}
				if err := p.Reset(); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "card in %s reset; factory defaults: PIN %s, PUK %s, default management key\n",
					r, card.DefaultPIN, card.DefaultPUK)
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&reader, "reader", "", "the reader (default: the only one with a card)")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the reset without asking")
	return cmd
}

// stdinTerminal reports whether standard input is a terminal (then the
// command may ask questions on it).
func (a *app) stdinTerminal() bool {
	if a.session != nil {
		return a.session.Request.StdinTerminal
	}
	f, ok := a.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
