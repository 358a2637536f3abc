package station

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
)

// ServeOptions say which embedded services to run; an empty address turns
// a service off.
type ServeOptions struct {
	HTTP  string // CA certificates and CRL
	LDAP  string // LDAP with StartTLS
	LDAPS string // LDAP over TLS
	// Passphrase unlocks the CA key if the services' certificate must be
	// issued first.
	Passphrase PassphraseFunc
	// Ready is told each service's listening address once it accepts
	// connections.
	Ready func(service, addr string)
}

// service is one running listener.
type service struct {
	name  string
	ln    net.Listener
	serve func(net.Listener) error
	stop  func(context.Context) error
}

// Serve runs the embedded services until ctx is cancelled or one of them
// fails, then stops them all.
func (s *Station) Serve(ctx context.Context, opts ServeOptions) error {
	var services []*service
	closeAll := func() {
		for _, svc := range services {
			svc.ln.Close()
		}
	}
	listen := func(name, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("station: %s on %s: %w", name, addr, err)
		}
		return ln, nil
	}
	if opts.HTTP != "" {
		chain, err := s.CAChain()
		if err != nil {
			return err
		}
		ln, err := listen("http", opts.HTTP)
		if err != nil {
			return err
		}
		srv := &http.Server{
			Handler:           pki.NewHTTPHandler(chain, s.CRLPath()),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			MaxHeaderBytes:    16 << 10,
		}
		services = append(services, &service{name: "http", ln: ln, serve: srv.Serve, stop: srv.Shutdown})
	}
	if opts.LDAP != "" || opts.LDAPS != "" {
		store, err := s.Directory()
		if err != nil {
			closeAll()
			return err
		}
		cert, err := s.ServiceTLS(opts.Passphrase)
		if err != nil {
			closeAll()
			return err
		}
		srv, err := directory.NewServer(directory.Config{
			Store:     store,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12},
			Log:       s.Log,
		})
		if err != nil {
			closeAll()
			return err
		}
		if opts.LDAP != "" {
			ln, err := listen("ldap", opts.LDAP)
			if err != nil {
				return err
			}
			services = append(services, &service{name: "ldap", ln: ln, serve: srv.Serve, stop: srv.Shutdown})
		}
		if opts.LDAPS != "" {
			ln, err := listen("ldaps", opts.LDAPS)
			if err != nil {
				return err
			}
			// Shutdown is shared with the ldap listener; calling it twice
			// is harmless.
			services = append(services, &service{name: "ldaps", ln: ln, serve: srv.ServeTLS, stop: srv.Shutdown})
		}
	}
	if len(services) == 0 {
		return errors.New("station: no service to run")
	}
	errc := make(chan error, len(services))
	var wg sync.WaitGroup
	for _, svc := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := svc.serve(svc.ln)
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("station: %s: %w", svc.name, err)
				return
			}
			errc <- nil
		}()
		s.Log.Info("service listening", "service", svc.name, "addr", svc.ln.Addr().String())
		if opts.Ready != nil {
			opts.Ready(svc.name, svc.ln.Addr().String())
		}
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, svc := range services {
		if err := svc.stop(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Warn("stopping service", "service", svc.name, "err", err)
		}
	}
	wg.Wait()
	s.Log.Info("services stopped")
	return runErr
}
