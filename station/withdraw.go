package station

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
)

// A certificate revoked for good (any reason but certificateHold) is
// withdrawn from where the CA published it: the user's directory entry
// (userCertificate;binary), or its file in standalone mode. Relying
// parties that look certificates up — mail clients encrypting to a
// recipient, certificate mapping — then no longer find it at all.
//
// A certificate on hold stays published: the hold is temporary, lifting
// it (Release, ReinstateCard) must not have to publish it again, and
// whoever takes a certificate from the directory checks its status anyway
// (the S/MIME recipient check and the KDC refuse held and revoked
// certificates alike). A held certificate later revoked for good is
// withdrawn then.
//
// The revocation is what counts and is durable before the withdrawal is
// tried: a withdrawal that fails (directory down) fails nothing. It is
// logged and audited (cert.withdraw, failed), and revoking the
// certificate again (scstation ca revoke) tries it again.

// withdrawTimeout bounds one withdrawal, so that an unreachable external
// directory cannot hold up a revocation (which is already committed).
const withdrawTimeout = 30 * time.Second

// revokedForGood follows every revocation in the CA database: it withdraws
// the certificate when the revocation made it (or found it) permanently
// revoked.
func (s *Station) revokedForGood(db *pki.DB, serial *big.Int, rec *pki.Record, err error) {
	if errors.Is(err, pki.ErrAlreadyRevoked) {
		rec, err = db.Get(serial)
	}
	if err != nil || rec == nil || rec.Status != pki.StatusRevoked {
		return
	}
	if werr := s.withdraw(rec); werr != nil {
		s.Log.Error("revoked certificate not withdrawn from the directory", "serial", hexSerial(rec.Serial), "user", rec.User, "err", werr)
		ar := audit.Record{Action: "cert.withdraw", User: rec.User, Cert: hexSerial(rec.Serial), Outcome: audit.Failed,
			Detail: "revoked, but still published: " + werr.Error() + " (revoke it again to retry)"}
		if aerr := s.Record(ar); aerr != nil {
			s.Log.Error("audit", "err", aerr)
		}
		return
	}
	s.Log.Info("revoked certificate withdrawn", "serial", hexSerial(rec.Serial), "user", rec.User)
}

// withdraw removes a certificate from its user's entry or, in standalone
// mode, its published file. A certificate that was never published (a
// host's, one whose publication failed) or whose user is gone is no error.
func (s *Station) withdraw(rec *pki.Record) error {
	if rec.User == "" {
		return nil
	}
	if s.Config.Standalone {
		// The file pki.FilePublisher wrote: DIR/USER/SERIAL.crt.
		if strings.ContainsAny(rec.User, `/\`) || rec.User == "." || rec.User == ".." {
			return nil
		}
		err := os.Remove(filepath.Join(s.path(publishedDir), rec.User, fmt.Sprintf("%x.crt", rec.Serial)))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	d, err := s.UserDirectory()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	err = d.RemoveCertificate(ctx, rec.User, rec.DER)
	if errors.Is(err, directory.ErrNoSuchUser) {
		return nil
	}
	return err
}
