package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/scstation/scstation/station"
)

// envPassphrase names the environment variable that may hold the CA key
// passphrase (for scripts; a prompt or --passphrase-file is better).
const envPassphrase = "SCSTATION_CA_PASSPHRASE"

const passphraseHelp = `The CA key passphrase comes from --passphrase-file, else the environment
variable ` + envPassphrase + `, else a prompt on the terminal.`

// passphrase returns a PassphraseFunc reading, in order: the file, the
// environment variable, the terminal (the caller's: for a forwarded
// command, the client's). The secret never goes to a log.
func (a *app) passphrase(file string) station.PassphraseFunc {
	return func(confirm bool) ([]byte, error) {
		if file != "" {
			data, err := os.ReadFile(a.path(file))
			if err != nil {
				return nil, fmt.Errorf("reading the passphrase file: %w", err)
			}
			p := bytes.TrimRight(data, "\r\n")
			if len(p) == 0 {
				return nil, errors.New("the passphrase file is empty")
			}
			return p, nil
		}
		if v, ok := a.lookupEnv(envPassphrase); ok && v != "" {
			return []byte(v), nil
		}
		p, err := a.readSecret("CA key passphrase: ")
		if errors.Is(err, station.ErrNoTerminal) {
			return nil, usagef("the CA key needs a passphrase: use --passphrase-file, %s, or run on a terminal", envPassphrase)
		}
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			return nil, errors.New("empty passphrase")
		}
		if confirm {
			q, err := a.readSecret("Again: ")
			if err != nil {
				clear(p)
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
