package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

// officerFlags say how the enrollment officer signs in.
type officerFlags struct {
	name, reader string
	pinStdin     bool
}

func (f *officerFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.name, "officer", station.DemoOfficer, "the officer whose virtual card signs (without --officer-reader)")
	cmd.Flags().StringVar(&f.reader, "officer-reader", "", "the PC/SC reader with the officer's card")
	cmd.Flags().BoolVar(&f.pinStdin, "officer-pin-stdin", false, "read the officer's PIN from the first line of standard input")
}

const officerHelp = `The officer signs every request with the enrollment-agent key on their own
card: --officer-reader names the reader it is in. Without it the officer's
virtual card (DIR/vcards/NAME.json, made by scstation demo or scstation init
--officer) is used; the demo officer's PIN is the demo's, other PINs come
from --officer-pin-stdin (the first line of standard input) or a prompt.`

// signIn signs the officer in for a command.
func (a *app) signIn(ctx context.Context, st *station.Station, f *officerFlags, secrets func(bool) *secretReader) error {
	var pin string
	demo := f.reader == "" && f.name == station.DemoOfficer && st.Config.Realm == station.DemoRealm && !f.pinStdin
	if demo {
		pin = station.DemoOfficerPIN
	} else {
		var err error
		if pin, err = secrets(f.pinStdin).read("officer PIN", false); err != nil {
			return err
		}
	}
	var err error
	if f.reader != "" {
		pc, perr := pcsc()
		if perr != nil {
			return perr
		}
		reader, rerr := chooseReader(pc, f.reader)
		pc.Release()
		if rerr != nil {
			return rerr
		}
		_, err = st.SignIn(ctx, reader, pin)
	} else {
		_, err = st.SignInVirtual(ctx, f.name, pin)
	}
	if err != nil {
		return enrollErr(err)
	}
	return nil
}

// enrollErr sorts station errors for the exit code.
func enrollErr(err error) error {
	var (
		ae  *station.AgentError
		cse *station.CardStateError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae), errors.As(err, &cse), errors.Is(err, station.ErrNotSignedIn),
		errors.Is(err, station.ErrNoAgentCertificate), errors.Is(err, station.ErrSealedPUK):
		return refusal{err}
	}
	return cardErr(err)
}

func (a *app) enrollCommand() *cobra.Command {
	var (
		user, templates, reader, vcard, keyAlg, batch, passFile string
		pinStdin, randomPIN                                     bool
		officer                                                 officerFlags
	)
	cmd := &cobra.Command{
		Use:   "enroll --user U --template T[,T2] [--reader R | --vcard FILE] [--pin-stdin | --random-pin]",
		Short: "Enroll a card on behalf of a user (scripted enrollment)",
		Long: `enroll prepares a user's card and puts certificates on it, on behalf of the
signed-in enrollment officer: the card's management key is replaced by one
only this station knows, the PUK by a random one kept sealed in the card
inventory, the PIN set; keys are generated on the card, the CA issues from
each template (logon templates go to slot 9A, S/MIME signing to 9C, S/MIME
encryption to 9D), the certificates are written to the card and the card is
recorded active. A failure at any step revokes what was issued and leaves
the card to be enrolled again from the start.

The user's card is in --reader (a PC/SC reader), or --vcard is the state
file of a virtual card used in-process. The PIN comes from a prompt (the
user types it twice), --pin-stdin (one line of standard input, after the
officer's PIN if --officer-pin-stdin), or --random-pin: a random PIN shown
once on standard output.

--batch FILE enrolls a queue: each line of the CSV file is a user and one
or more templates (user,template[,template...]). For each card the command
waits for a line on standard input (Enter once the card is in the reader),
then with --pin-stdin reads that card's PIN from the next line.

` + officerHelp + `

Exit codes: 0 enrolled, 1 refused (PIN policy, the CA, a card already
enrolled, officer not accepted), 2 usage or environment (no card, card
removed, pcscd not running).`,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			if (user == "") == (batch == "") {
				return usagef("give --user (with --template) or --batch")
			}
			if user != "" && templates == "" {
				return usagef("--template is required")
			}
			if pinStdin && randomPIN {
				return usagef("--pin-stdin and --random-pin contradict each other")
			}
			if reader != "" && vcard != "" {
				return usagef("--reader and --vcard contradict each other")
			}
			if batch != "" && vcard != "" {
				return usagef("--batch needs cards in a reader, not --vcard")
			}
			alg, err := pki.ParseKeyAlgorithm(keyAlg)
			if err != nil {
				return usageError{err}
			}
			var stdinSecrets *secretReader
			secrets := func(fromStdin bool) *secretReader {
				if !fromStdin {
					return a.secretReader(cmd, false)
				}
				if stdinSecrets == nil {
					stdinSecrets = a.secretReader(cmd, true)
				}
				return stdinSecrets
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if err := a.signIn(ctx, st, &officer, secrets); err != nil {
				return err
			}
			defer st.SignOut()
			one := func(user string, templates []string) error {
				req := station.EnrollRequest{User: user, Templates: templates, RandomPIN: randomPIN, KeyAlgorithm: alg,
					Passphrase: a.passphrase(passFile), Progress: func(s station.Step) {
						fmt.Fprintf(cmd.OutOrStdout(), "  %-15s %8s  %s\n", s.Name, s.Took.Round(100_000), s.Detail)
					}}
				if vcard != "" {
					vs, err := virtual.LoadState(vcard)
					if err != nil {
						return usageError{fmt.Errorf("--vcard: %w", err)}
					}
					req.Card, req.Reader = virtual.New(vs, vcard), "virtual card "+vcard
				} else {
					pc, err := pcsc()
					if err != nil {
						return err
					}
					r, err := chooseUserReader(pc, reader, officer.reader)
					pc.Release()
					if err != nil {
						return err
					}
					req.Reader = r
				}
				if !randomPIN {
					pin, err := secrets(pinStdin).read("new PIN for "+user, true)
					if err != nil {
						return err
					}
					req.PIN = pin
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Enrolling %s (%s) on the card in %s\n", user, strings.Join(templates, ", "), req.Reader)
				res, err := st.Enroll(ctx, req)
				if err != nil {
					return enrollErr(err)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "Card %s (serial %d) enrolled for %s in %s\n", res.CardID, res.Serial, user, res.Total.Round(1_000_000))
				for i, c := range res.Certificates {
					fmt.Fprintf(out, "  %v %s serial %x, valid to %s\n", res.Slots[i], templates[i], c.SerialNumber, c.NotAfter.Format("2006-01-02"))
				}
				if res.PIN != "" {
					fmt.Fprintf(out, "Initial PIN (shown once, give it to %s): %s\n", user, res.PIN)
				}
				return nil
			}
			if batch == "" {
				return one(user, splitList(templates))
			}
			return a.enrollBatch(cmd, batch, secrets, one)
		}),
	}
	cmd.Flags().StringVar(&user, "user", "", "the card holder (directory login name)")
	cmd.Flags().StringVar(&templates, "template", "", "certificate template(s), comma-separated: smartcard-logon, smartcard-user, smime-signing, smime-encryption")
	cmd.Flags().StringVar(&reader, "reader", "", "the reader with the user's card (default: the only one with a card, other than the officer's)")
	cmd.Flags().StringVar(&vcard, "vcard", "", "enroll the virtual card with this state file (in-process)")
	cmd.Flags().StringVar(&keyAlg, "key-algorithm", "p256", "card key algorithm: p256, p384, rsa2048")
	cmd.Flags().BoolVar(&pinStdin, "pin-stdin", false, "read the user's new PIN from standard input")
	cmd.Flags().BoolVar(&randomPIN, "random-pin", false, "set a random PIN and show it once")
	cmd.Flags().StringVar(&batch, "batch", "", "CSV file of user,template[,template...] lines to enroll one card after another")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the CA key passphrase (if the key is encrypted)")
	for _, f := range []string{"vcard", "batch", "passphrase-file"} {
		cmd.MarkFlagFilename(f)
	}
	officer.register(cmd)
	return cmd
}

// readLine reads one line, which may be empty (Enter), from standard input
// (with --pin-stdin style input) or the caller's terminal (unechoed).
func (s *secretReader) readLine() (string, error) {
	if s.stdin == nil {
		b, err := s.a.readSecret("")
		defer clear(b)
		return string(b), err
	}
	line, err := s.stdin.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// chooseUserReader is chooseReader that, without --reader, leaves out the
// officer's reader.
func chooseUserReader(pc *card.Context, name, officerReader string) (string, error) {
	if name != "" || officerReader == "" {
		return chooseReader(pc, name)
	}
	readers, err := pc.ListReaders()
	if err != nil {
		return "", cardErr(err)
	}
	off := matchReaders(readers, officerReader)
	var with []string
	for _, r := range readers {
		if len(off) == 1 && r == off[0] {
			continue
		}
		if info, err := pc.Inspect(r, false); err == nil && info.Present {
			with = append(with, r)
		}
	}
	switch len(with) {
	case 0:
		return "", usagef("no user card in any reader but the officer's:%s", listOf(readers))
	case 1:
		return with[0], nil
	}
	return "", usagef("cards are in several readers; choose one with --reader:%s", listOf(with))
}

// enrollBatch enrolls the users of a CSV file one card after another.
func (a *app) enrollBatch(cmd *cobra.Command, path string, secrets func(bool) *secretReader, one func(string, []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return usageError{err}
	}
	defer f.Close()
	queue, err := parseBatch(f, path)
	if err != nil {
		return err
	}
	var failed []string
	for i, e := range queue {
		fmt.Fprintf(a.stderr, "[%d/%d] Insert the card for %s and press Enter: ", i+1, len(queue), e.user)
		if _, err := secrets(true).readLine(); err != nil {
			return usagef("--batch: standard input ended before the card for %s", e.user)
		}
		fmt.Fprintln(a.stderr)
		if err := one(e.user, e.templates); err != nil {
			fmt.Fprintf(a.stderr, "scstation: %s: %v\n", e.user, err)
			failed = append(failed, e.user)
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d of %d cards enrolled\n", len(queue)-len(failed), len(queue))
	if len(failed) > 0 {
		return refusal{fmt.Errorf("not enrolled: %s", strings.Join(failed, ", "))}
	}
	return nil
}

// bootstrapOfficer makes the first enrollment officer (init --officer).
func (a *app) bootstrapOfficer(cmd *cobra.Command, st *station.Station, f *officerFlags, pass station.PassphraseFunc) error {
	pin, err := a.secretReader(cmd, f.pinStdin).read("new PIN for the officer card", true)
	if err != nil {
		return err
	}
	opts := station.OfficerOptions{User: f.name, PIN: pin, Passphrase: pass}
	if f.reader != "" {
		pc, err := pcsc()
		if err != nil {
			return err
		}
		r, err := chooseReader(pc, f.reader)
		pc.Release()
		if err != nil {
			return err
		}
		opts.Reader = r
	}
	res, err := st.BootstrapOfficer(cmd.Context(), opts)
	if err != nil {
		return enrollErr(err)
	}
	where := opts.Reader
	if where == "" {
		where = "virtual card " + st.VirtualCardPath(f.name)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "  enrollment officer %s: agent certificate %x on card %s (%s)\n", f.name, res.Certificates[0].SerialNumber, res.CardID, where)
	return nil
}

// batchEntry is one line of a --batch file.
type batchEntry struct {
	user      string
	templates []string
}

// parseBatch reads a --batch CSV file: user,template[,template...] per
// line (a field may also hold several templates separated by commas in
// quotes), # comments.
func parseBatch(in io.Reader, name string) ([]batchEntry, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.Comment = '#'
	r.TrimLeadingSpace = true
	var queue []batchEntry
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, usagef("--batch %s: %v", name, err)
		}
		line, _ := r.FieldPos(0)
		user := strings.TrimSpace(rec[0])
		var ts []string
		for _, t := range rec[1:] {
			ts = append(ts, splitList(t)...)
		}
		if user == "" || len(ts) == 0 {
			return nil, usagef("--batch %s line %d: want user,template[,template...]", name, line)
		}
		queue = append(queue, batchEntry{user, ts})
	}
	if len(queue) == 0 {
		return nil, usagef("--batch %s: no users", name)
	}
	return queue, nil
}
