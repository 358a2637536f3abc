package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
)

func (a *app) vcardCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vcard",
		Short: "PIV card emulator: create a card state file; attach it to vpcd",
		Long: `vcard is scstation's PIV card emulator (with the Yubico extensions tools
expect). A virtual card lives in a state file: its keys, objects, PIN, PUK
and retry counters. "vcard run" puts it into a vsmartcard virtual reader
(vpcd) of the local pcscd, where every PC/SC program sees it as a card.

The state file holds the card's secrets and private keys: it is written
readable by its owner only.`,
	}
	cmd.AddCommand(a.vcardNewCommand(), a.vcardRunCommand())
	return cmd
}

func (a *app) vcardNewCommand() *cobra.Command {
	var (
		state   string
		serial  uint32
		rsa, ec bool
	)
	cmd := &cobra.Command{
		Use:   "new --state F [--serial N] [--rsa|--ec]",
		Short: "Create a factory-fresh virtual card in a state file",
		Long: `vcard new creates the state file of a factory-fresh virtual PIV card: default
PIN (123456), PUK (12345678) and management key, a CHUID with a random GUID,
and an attestation key in slot F9 certified by the card's own attestation
CA. --serial sets the serial number (default: random, 8 digits); --rsa or
--ec chooses RSA-2048 or ECC P-256 (default) for the attestation key.
An existing file is never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				return usagef("--state is required")
			}
			if rsa && ec {
				return usagef("--rsa and --ec contradict each other")
			}
			alg, algName := virtual.AlgECCP256, "ECC P-256"
			if rsa {
				alg, algName = virtual.AlgRSA2048, "RSA-2048"
			}
			if !cmd.Flags().Changed("serial") {
				n, err := rand.Int(rand.Reader, big.NewInt(90_000_000))
				if err != nil {
					return err
				}
				serial = uint32(10_000_000 + n.Int64())
			}
			st, err := virtual.NewState(serial, virtual.WithAttestationAlgorithm(alg))
			if err != nil {
				return err
			}
			// Claim the name first, so that an existing file (or one made
			// meanwhile) is never replaced; Save then replaces our claim.
			f, err := os.OpenFile(state, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, fs.ErrExist) {
				return refusal{fmt.Errorf("%s exists: not overwriting a card's state", state)}
			}
			if err != nil {
				return usageError{err}
			}
			f.Close()
			if err := st.Save(state); err != nil {
				os.Remove(state)
				return err
			}
			chuid := card.CHUID{}
			copy(chuid.GUID[:], st.GUID())
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "virtual card created in %s\n", state)
			fmt.Fprintf(out, "  serial       %d\n", st.Serial)
			fmt.Fprintf(out, "  GUID         %s\n", chuid.GUIDString())
			fmt.Fprintf(out, "  attestation  %s\n", algName)
			fmt.Fprintf(out, "  factory defaults: PIN %s, PUK %s, default management key\n", card.DefaultPIN, card.DefaultPUK)
			fmt.Fprintf(out, "attach it with: scstation vcard run --state %s\n", state)
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "the state file to create")
	cmd.Flags().Uint32Var(&serial, "serial", 0, "serial number (default: random)")
	cmd.Flags().BoolVar(&rsa, "rsa", false, "RSA-2048 attestation key")
	cmd.Flags().BoolVar(&ec, "ec", false, "ECC P-256 attestation key (the default)")
	return cmd
}

func (a *app) vcardRunCommand() *cobra.Command {
	var state, addr string
	cmd := &cobra.Command{
		Use:   "run --state F [--vpcd ADDR]",
		Short: "Put a virtual card into a vpcd virtual reader until stopped",
		Long: `vcard run loads a virtual card's state file and inserts the card into the
vsmartcard virtual reader listening at --vpcd (default ` + virtual.DefaultVPCDAddr + `, the
first "Virtual PCD" reader of pcscd). It runs until SIGINT or SIGTERM, which
removes the card. Every change the card makes (keys, certificates, PIN, retry
counters) is saved to the state file before the card answers. When pcscd is
not running, or restarts, it keeps trying to connect.

One state file runs in one process at a time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				return usagef("--state is required")
			}
			st, err := virtual.LoadState(state)
			if err != nil {
				return usageError{err}
			}
			unlock, err := lockState(state)
			if err != nil {
				return err
			}
			defer unlock()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			c := virtual.New(st, state)
			defer c.Close()
			chuid := card.CHUID{}
			copy(chuid.GUID[:], st.GUID())
			fmt.Fprintf(cmd.OutOrStdout(), "virtual card %d (GUID %s) in vpcd %s; stop with Ctrl-C\n",
				st.Serial, chuid.GUIDString(), addr)
			if err := c.ServeVPCD(ctx, addr, a.log); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "card removed")
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "the card's state file (from vcard new)")
	cmd.Flags().StringVar(&addr, "vpcd", virtual.DefaultVPCDAddr, "vpcd's address: host:port")
	return cmd
}

// lockState takes an exclusive lock on F.lock next to the state file, so
// that two emulators do not run (and save) the same card. It does not
// wait: a card in use is a refusal.
func lockState(state string) (func(), error) {
	f, err := os.OpenFile(state+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, usageError{err}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, refusal{fmt.Errorf("%s is in use by another vcard run", state)}
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
