package pki

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/scstation/scstation/internal/atomicfile"
)

// FilePublisher publishes certificates as PEM files, one directory per
// user: what a standalone CA (no directory service) does.
type FilePublisher struct{ Dir string }

// Publish writes DIR/USER/SERIAL.crt.
func (p FilePublisher) Publish(_ context.Context, user *User, rec *Record) error {
	if user.Name == "" || strings.ContainsAny(user.Name, `/\`) || user.Name == "." || user.Name == ".." {
		return fmt.Errorf("pki: cannot publish for user name %q", user.Name)
	}
	dir := filepath.Join(p.Dir, user.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rec.DER})
	return atomicfile.Write(filepath.Join(dir, fmt.Sprintf("%x.crt", rec.Serial)), data, 0o644)
}
