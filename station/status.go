package station

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/pki"
)

// Templates returns the certificate templates the CA issues from (the
// built-in ones and the site's files), sorted by name. It needs no CA key.
func (s *Station) Templates() ([]*pki.Template, error) {
	m, err := pki.LoadTemplates(s.path(templatesDir))
	if err != nil {
		return nil, err
	}
	out := make([]*pki.Template, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *pki.Template) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// CAKeyEncrypted says whether the CA key needs a passphrase to be used.
func (s *Station) CAKeyEncrypted() bool { return s.Config.CA.KeyEncrypted }

// CurrentCRL returns the published CRL, after checking that the CA signed
// it; nil and no error when no CRL has been published yet.
func (s *Station) CurrentCRL() (*x509.RevocationList, error) {
	data, err := os.ReadFile(s.CRLPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("station: the published CRL is damaged: %w", err)
	}
	chain, err := s.CAChain()
	if err != nil {
		return nil, err
	}
	if err := crl.CheckSignatureFrom(chain[0]); err != nil {
		return nil, fmt.Errorf("station: the published CRL is not signed by this CA: %w", err)
	}
	return crl, nil
}

// WatchReaders reports PC/SC readers and cards coming and going until ctx
// is done (see card.Monitor; one runs per process).
func (s *Station) WatchReaders(ctx context.Context, events chan<- card.Event) error {
	return card.NewMonitor().Run(ctx, events)
}
