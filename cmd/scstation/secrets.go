package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"

	"github.com/scstation/scstation/station"
)

// envPassphrase names the environment variable that may hold the CA key
// passphrase (for scripts; a prompt or --passphrase-file is better).
const envPassphrase = "SCSTATION_CA_PASSPHRASE"

const passphraseHelp = `The CA key passphrase comes from --passphrase-file, else the environment
variable ` + envPassphrase + `, else a prompt on the terminal.`

// passphrase returns a PassphraseFunc reading, in order: the file, the
// environment variable, the terminal. The secret never goes to a log.
func passphrase(file string) station.PassphraseFunc {
	return func(confirm bool) ([]byte, error) {
		if file != "" {
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("reading the passphrase file: %w", err)
			}
			p := bytes.TrimRight(data, "\r\n")
			if len(p) == 0 {
				return nil, errors.New("the passphrase file is empty")
			}
			return p, nil
		}
		if v, ok := os.LookupEnv(envPassphrase); ok && v != "" {
			return []byte(v), nil
		}
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil || !term.IsTerminal(int(tty.Fd())) {
			return nil, usagef("the CA key needs a passphrase: use --passphrase-file, %s, or run on a terminal", envPassphrase)
		}
		defer tty.Close()
		fmt.Fprint(tty, "CA key passphrase: ")
		p, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			return nil, errors.New("empty passphrase")
		}
		if confirm {
			fmt.Fprint(tty, "Again: ")
			q, err := term.ReadPassword(int(tty.Fd()))
			fmt.Fprintln(tty)
			if err != nil {
				return nil, err
			}
			same := bytes.Equal(p, q)
			clear(q)
			if !same {
				clear(p)
				return nil, errors.New("the passphrases differ")
			}
		}
		return p, nil
	}
}
