package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/smime"
	"github.com/scstation/scstation/station"
)

// mailFlags are the flags every mail subcommand shares.
type mailFlags struct {
	in, out           string
	to                []string
	reader            string
	pinStdin          bool
	certFile, keyFile string
	gcm, oaep, aes128 bool
	opaque            bool
	noVerify          bool
}

const mailHelp = `Messages are RFC 5322 mail (header fields, a blank line, the body) read from
--in and written to --out (- or nothing: standard input and output). The
Content-* fields and the body are what is signed or encrypted; From, To,
Subject and the other fields stay outside.

The key is the card in --reader (signing: slot 9C, else 9A; decrypting:
slot 9D, else 9A; the PIN from a prompt or --pin-stdin), or the files --cert
and --key (PEM, unencrypted).

Recipients are --to, else the message's To and Cc, and always the sender
(From), so they can read their sent mail. Their certificates come from the
directory by mail address and must chain to the station CA, be valid now,
be for email protection and encryption, and not be revoked. Signatures are
verified the same way: the signer's certificate from the message, else from
the directory.

Exit codes: 0 done (and valid); 1 the message is invalid (bad signature,
tampered, malformed, not for this key) or a refusal (no usable recipient
certificate, wrong PIN); 2 a usage or environment error.`

func (a *app) mailCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mail sign|encrypt|sign-encrypt|decrypt|verify|certs",
		Short: "Sign, encrypt, decrypt and verify S/MIME mail with card or file keys",
		Long:  "mail handles S/MIME (RFC 8551) messages.\n\n" + mailHelp,
	}
	cmd.AddCommand(
		a.mailSubcommand("sign", "Sign a message (multipart/signed, or --opaque signed-data)", true, false),
		a.mailSubcommand("encrypt", "Encrypt a message to its recipients", false, true),
		a.mailSubcommand("sign-encrypt", "Sign, then encrypt a message", true, true),
		a.mailSubcommand("decrypt", "Decrypt a message, and verify it when it is signed", false, false),
		a.mailSubcommand("verify", "Verify a signed message and report each check", false, false),
		a.mailCertsCommand(),
	)
	return cmd
}

// mailCertsCommand writes a certs-only message with users' encryption
// certificates and the station CA chain, to hand to a correspondent.
func (a *app) mailCertsCommand() *cobra.Command {
	var (
		to  []string
		out string
	)
	cmd := &cobra.Command{
		Use:   "certs --to ADDR [--to ADDR ...] [--out F]",
		Short: "Write a certs-only message with users' mail certificates and the CA chain",
		Long: `certs writes an S/MIME certs-only message (application/pkcs7-mime;
smime-type=certs-only) holding the checked encryption certificate of each
--to address from the directory, followed by the station CA chain, so that
someone outside can encrypt to them.

Exit codes: 0 written; 1 an address has no usable certificate; 2 a usage or
environment error.`,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			if len(to) == 0 {
				return usagef("give at least one --to address")
			}
			mt, err := st.MailTrust()
			if err != nil {
				return err
			}
			certs, err := mt.Recipients(cmd.Context(), to)
			if err != nil {
				return refusal{err}
			}
			chain, err := st.CAChain()
			if err != nil {
				return err
			}
			msg, err := smime.CertsOnly(append(certs, chain...)...)
			if err != nil {
				return err
			}
			return writeMailOutput(cmd, out, msg)
		}),
	}
	cmd.Flags().StringSliceVar(&to, "to", nil, "a user's mail address (repeat or comma-separate)")
	cmd.Flags().StringVar(&out, "out", "-", "where to write the message (- for standard output)")
	cmd.MarkFlagFilename("out")
	return cmd
}

func (a *app) mailSubcommand(name, short string, signs, encrypts bool) *cobra.Command {
	var f mailFlags
	cmd := &cobra.Command{
		Use:   name + " [--in F] [--out F] [flags]",
		Short: short,
		Long:  short + ".\n\n" + mailHelp,
		Args:  cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			if (f.certFile == "") != (f.keyFile == "") && name != "encrypt" {
				return usagef("--cert and --key go together")
			}
			if f.reader != "" && f.certFile != "" {
				return usagef("give either --reader or --cert and --key")
			}
			if f.pinStdin && (f.in == "" || f.in == "-") {
				return usagef("--pin-stdin takes standard input: give the message with --in FILE")
			}
			msg, err := readMailInput(cmd, f.in)
			if err != nil {
				return err
			}
			// A one-shot command over one message: collect garbage only when
			// the heap grows past a generous multiple of the message, not
			// every few megabytes (GC was a fifth of the CPU time for 1 MB).
			// Not inside a process holding the data directory (a
			// forwarded command): the settings are process-wide.
			if a.session == nil {
				defer debug.SetGCPercent(debug.SetGCPercent(-1))
				defer debug.SetMemoryLimit(debug.SetMemoryLimit(max(64<<20, 8*int64(len(msg)))))
			}
			mt, err := st.MailTrust()
			if err != nil {
				return err
			}
			r := &mailRun{a: a, cmd: cmd, f: &f, mt: mt}
			defer r.close()
			var out []byte
			switch name {
			case "sign":
				out, err = r.sign(msg)
			case "encrypt":
				out, err = r.encrypt(msg)
			case "sign-encrypt":
				var signed []byte
				if signed, err = r.sign(msg); err == nil {
					out, err = r.encrypt(signed)
				}
			case "decrypt":
				out, err = r.decrypt(msg)
			case "verify":
				out, err = r.verify(msg)
			}
			if err != nil {
				return mailErr(err)
			}
			return writeMailOutput(cmd, f.out, out)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in, "in", "-", "the message to read (- for standard input)")
	fl.StringVar(&f.out, "out", "-", "where to write the result (- for standard output)")
	cmd.MarkFlagFilename("in")
	cmd.MarkFlagFilename("out")
	if name != "verify" && name != "encrypt" {
		fl.StringVar(&f.reader, "reader", "", "the PC/SC reader with the card holding the key")
		fl.BoolVar(&f.pinStdin, "pin-stdin", false, "read the card PIN from standard input")
		fl.StringVar(&f.keyFile, "key", "", "the private key (PEM) instead of a card")
		cmd.MarkFlagFilename("key")
	}
	if name != "verify" && name != "encrypt" {
		fl.StringVar(&f.certFile, "cert", "", "the certificate of --key (PEM, intermediates after it)")
		cmd.MarkFlagFilename("cert")
	}
	if signs {
		fl.BoolVar(&f.opaque, "opaque", false, "opaque signed-data instead of multipart/signed")
	}
	if encrypts {
		fl.StringSliceVar(&f.to, "to", nil, "a recipient's mail address (repeat or comma-separate; default the message's To and Cc)")
		fl.BoolVar(&f.gcm, "gcm", false, "AES-GCM authEnveloped-data instead of AES-CBC")
		fl.BoolVar(&f.aes128, "aes128", false, "128-bit AES instead of 256-bit")
		fl.BoolVar(&f.oaep, "oaep", false, "RSA-OAEP (SHA-256) for RSA recipients instead of PKCS#1 v1.5")
	}
	if name == "decrypt" {
		fl.BoolVar(&f.noVerify, "no-verify", false, "write a signed message as it is, without verifying it")
	}
	return cmd
}

// mailRun is one mail command: its keys, and the card session when one is
// open.
type mailRun struct {
	a       *app
	cmd     *cobra.Command
	f       *mailFlags
	mt      *station.MailTrust
	piv     *card.PIV
	release func()
	pin     string
}

func (r *mailRun) close() {
	if r.release != nil {
		r.release()
	}
}

// report is where the human-readable report goes: standard error when the
// result goes to standard output.
func (r *mailRun) report() io.Writer {
	if r.f.out == "" || r.f.out == "-" {
		return r.cmd.ErrOrStderr()
	}
	return r.cmd.OutOrStdout()
}

func (r *mailRun) openCard() error {
	if r.piv != nil {
		return nil
	}
	ctx, err := card.EstablishContext()
	if err != nil {
		return cardErr(err)
	}
	c, err := ctx.Connect(r.f.reader)
	if err != nil {
		ctx.Release()
		return cardErr(err)
	}
	p, err := card.OpenPIV(c)
	if err != nil {
		c.Close()
		ctx.Release()
		return cardErr(err)
	}
	r.piv, r.release = p, func() { p.Close(); ctx.Release() }
	pin, err := r.a.secretReader(r.cmd, r.f.pinStdin).read("PIN", false)
	if err != nil {
		return err
	}
	if err := p.VerifyPIN(pin); err != nil {
		return cardErr(err)
	}
	r.pin = pin
	return nil
}

// cardKey returns the certificate and key of the first of slots that has
// a certificate.
func (r *mailRun) cardKey(slots ...card.Slot) ([]*x509.Certificate, []crypto.PrivateKey, error) {
	if err := r.openCard(); err != nil {
		return nil, nil, err
	}
	var certs []*x509.Certificate
	var keys []crypto.PrivateKey
	for _, s := range slots {
		cert, err := r.piv.Certificate(s)
		if errors.Is(err, card.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, cardErr(err)
		}
		k, err := r.piv.PrivateKey(s, cert.PublicKey, card.KeyAuth{PIN: r.pin})
		if err != nil {
			return nil, nil, cardErr(err)
		}
		certs, keys = append(certs, cert), append(keys, k)
	}
	if len(certs) == 0 {
		return nil, nil, refusal{fmt.Errorf("the card in %s has no certificate in slot %v", r.f.reader, slots)}
	}
	return certs, keys, nil
}

func (r *mailRun) fileKey() ([]*x509.Certificate, crypto.PrivateKey, error) {
	certs, err := readCertFile(r.f.certFile)
	if err != nil {
		return nil, nil, err
	}
	pemKey, err := os.ReadFile(r.f.keyFile)
	if err != nil {
		return nil, nil, err
	}
	key, err := pki.ParsePrivateKeyPEM(pemKey, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.f.keyFile, err)
	}
	return certs, key, nil
}

func (r *mailRun) needKey() error {
	if r.f.reader == "" && r.f.certFile == "" {
		return usagef("give --reader, or --cert and --key")
	}
	return nil
}

func (r *mailRun) sign(msg []byte) ([]byte, error) {
	if err := r.needKey(); err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	var chain []*x509.Certificate
	var key crypto.PrivateKey
	if r.f.reader != "" {
		certs, keys, err := r.cardKey(card.SlotSignature, card.SlotAuthentication)
		if err != nil {
			return nil, err
		}
		cert, key = certs[0], keys[0]
	} else {
		certs, k, err := r.fileKey()
		if err != nil {
			return nil, err
		}
		cert, chain, key = certs[0], certs[1:], k
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the key cannot sign")
	}
	// Refuse to sign with a certificate recipients would reject.
	if err := r.mt.Check(cert, station.MailSigning); err != nil {
		return nil, refusal{fmt.Errorf("the signing certificate (serial %x): %w", cert.SerialNumber, err)}
	}
	// Recipients check that From is the signer's address: do not make a
	// message that fails that check.
	hdr, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return nil, refusal{fmt.Errorf("the message's header: %w", err)}
	}
	from, err := mail.ParseAddress(hdr.Header.Get("From"))
	if err != nil {
		return nil, refusal{fmt.Errorf("the message needs a From field with the signer's address: %v", err)}
	}
	if !certHasAddress(cert, from.Address) {
		return nil, refusal{fmt.Errorf("From %s is not an address of the signing certificate (%s)", from.Address, strings.Join(cert.EmailAddresses, ", "))}
	}
	return smime.Sign(msg, signer, cert, chain, &smime.SignOptions{Opaque: r.f.opaque})
}

// encrypt encrypts to --to (or To and Cc) and the sender.
func (r *mailRun) encrypt(msg []byte) ([]byte, error) {
	hdr, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return nil, refusal{fmt.Errorf("the message's header: %w", err)}
	}
	addrs := r.f.to
	if len(addrs) == 0 {
		for _, field := range []string{"To", "Cc"} {
			list, err := hdr.Header.AddressList(field)
			if err != nil && !errors.Is(err, mail.ErrHeaderNotPresent) {
				return nil, refusal{fmt.Errorf("the %s field: %w", field, err)}
			}
			for _, a := range list {
				addrs = append(addrs, a.Address)
			}
		}
	}
	if len(addrs) == 0 {
		return nil, usagef("no recipients: give --to, or To/Cc in the message")
	}
	from, err := mail.ParseAddress(hdr.Header.Get("From"))
	if err != nil {
		return nil, usagef("the message needs a From field (the sender is always a recipient): %v", err)
	}
	if !containsFold(addrs, from.Address) {
		addrs = append(addrs, from.Address)
	}
	certs, err := r.mt.Recipients(r.cmd.Context(), addrs)
	if err != nil {
		return nil, refusal{err}
	}
	opts := &smime.EncryptOptions{OAEP: r.f.oaep}
	switch {
	case r.f.gcm && r.f.aes128:
		opts.Cipher = smime.AES128GCM
	case r.f.gcm:
		opts.Cipher = smime.AES256GCM
	case r.f.aes128:
		opts.Cipher = smime.AES128CBC
	}
	out, err := smime.Encrypt(msg, certs, opts)
	if err == nil {
		fmt.Fprintf(r.report(), "encrypted for %s\n", strings.Join(addrs, ", "))
	}
	return out, err
}

func certHasAddress(c *x509.Certificate, addr string) bool {
	return containsFold(c.EmailAddresses, addr)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (r *mailRun) decrypt(msg []byte) ([]byte, error) {
	if err := r.needKey(); err != nil {
		return nil, err
	}
	var plain []byte
	if r.f.reader != "" {
		certs, keys, err := r.cardKey(card.SlotKeyManagement, card.SlotAuthentication)
		if err != nil {
			return nil, err
		}
		for i := range certs {
			plain, err = smime.Decrypt(msg, keys[i], certs[i])
			if !errors.Is(err, smime.ErrNotForRecipient) {
				break
			}
		}
		if err != nil {
			return nil, err
		}
	} else {
		certs, key, err := r.fileKey()
		if err != nil {
			return nil, err
		}
		if plain, err = smime.Decrypt(msg, key, certs[0]); err != nil {
			return nil, err
		}
	}
	if r.f.noVerify || !smime.IsSigned(plain) {
		fmt.Fprintln(r.report(), "decrypted (not signed)")
		return plain, nil
	}
	fmt.Fprintln(r.report(), "decrypted; signed:")
	return r.verify(plain)
}

func (r *mailRun) verify(msg []byte) ([]byte, error) {
	v, err := smime.Verify(msg, r.mt.VerifyOptions(r.cmd.Context()))
	if v != nil {
		printVerification(r.report(), v)
	}
	if err != nil {
		return nil, err
	}
	return v.Message, nil
}

func printVerification(w io.Writer, v *smime.Verification) {
	mark := func(ok bool, good string, bad error) string {
		if ok {
			return "ok    " + good
		}
		msg := "failed"
		if bad != nil {
			msg = bad.Error()
		}
		return "FAIL  " + msg
	}
	signer := "unknown"
	if v.Signer != nil {
		signer = fmt.Sprintf("%s, serial %x", v.Signer.Subject.CommonName, v.Signer.SerialNumber)
	}
	when := ""
	if !v.SigningTime.IsZero() {
		when = ", signed " + v.SigningTime.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "  signature:   %s\n", mark(v.SignatureValid, "by "+signer+when, v.SignatureError))
	fmt.Fprintf(w, "  certificate: %s\n", mark(v.ChainValid, "chains to the station CA, valid, for email protection", v.ChainError))
	fmt.Fprintf(w, "  address:     %s\n", mark(v.AddressMatches, v.From+" is the signer's", v.AddressError))
	fmt.Fprintf(w, "  revocation:  %s\n", mark(v.NotRevoked, "not revoked", v.RevocationError))
}

// mailErr sorts mail errors for the exit code.
func mailErr(err error) error {
	var u usageError
	var rf refusal
	if errors.As(err, &u) || errors.As(err, &rf) {
		return err
	}
	if smime.IsInvalid(err) {
		return refusal{err}
	}
	return cardErr(err)
}

func readMailInput(cmd *cobra.Command, path string) ([]byte, error) {
	var r io.Reader
	if path == "" || path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError{err}
		}
		defer f.Close()
		r = f
	}
	// A regular file is read into one buffer of its size (not grown and
	// cleared step by step: this is megabytes on every command).
	b := []byte(nil)
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() <= smime.MaxMessageSize {
			b = make([]byte, 0, int(fi.Size())+512)
		}
	}
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, max(len(b), 64<<10))
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(b) > smime.MaxMessageSize {
			break
		}
	}
	if len(b) > smime.MaxMessageSize {
		return nil, refusal{fmt.Errorf("the message is larger than %d bytes", smime.MaxMessageSize)}
	}
	return b, nil
}

// writeMailOutput writes the result atomically (a temporary file renamed
// into place: never a torn message) but without fsync: the output is
// derived from the input and can be made again, and flushing megabytes to
// disk would double the command's time.
func writeMailOutput(cmd *cobra.Command, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return usageError{err}
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
