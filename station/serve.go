package station

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
)

// ServeOptions say which embedded services to run; an empty address turns
// a service off.
type ServeOptions struct {
	HTTP  string // CA certificates and CRL
	LDAP  string // LDAP with StartTLS
	LDAPS string // LDAP over TLS
	KDC   string // Kerberos, UDP and TCP on the same address
	// Passphrase unlocks the CA key if the services' or the KDC's
	// certificate must be issued first.
	Passphrase PassphraseFunc
	// Ready is told each service's listening address once it accepts
	// requests.
	Ready func(service, addr string)
	// Services are run, stopped and reported (/health, the ready line)
	// beside the embedded ones: services built above package station,
	// such as the administrators' SSH station (tui/sshadmin).
	Services []Service
}

// Service is a TCP service that Serve runs beside the embedded ones.
type Service struct {
	Name string
	Addr string
	// Serve serves on l until Shutdown is called.
	Serve    func(l net.Listener) error
	Shutdown func(ctx context.Context) error
}

// service is one running embedded service: it is listening when it is
// made, run serves until stop is called.
type service struct {
	name string
	addr string
	run  func() error
	stop func(context.Context) error
	// udpAddr is set when the service also listens on UDP (the KDC).
	udpAddr string
}

// Serve runs the embedded services until ctx is cancelled or one of them
// fails, then stops them all.
func (s *Station) Serve(ctx context.Context, opts ServeOptions) (err error) {
	var services []*service
	defer func() {
		if err != nil {
			for _, svc := range services {
				svc.stop(context.Background())
			}
		}
	}()
	if opts.HTTP == "" && opts.LDAP == "" && opts.LDAPS == "" && opts.KDC == "" && len(opts.Services) == 0 {
		return errors.New("station: no service to run")
	}
	if opts.KDC != "" && s.Config.KDC.External() {
		// An external KDC serves the realm (scstation kdc export).
		s.Log.Warn("embedded KDC not started: [kdc] mode is external")
		opts.KDC = ""
		if opts.HTTP == "" && opts.LDAP == "" && opts.LDAPS == "" && len(opts.Services) == 0 {
			return errors.New("station: no service to run (the KDC is external, so it is not served here)")
		}
	}
	caChain, err := s.CAChain()
	if err != nil {
		return err
	}
	hl := newHealth(s, caChain[0])
	if opts.HTTP != "" {
		chain, err := s.CAChain()
		if err != nil {
			return err
		}
		srv := &http.Server{
			Handler:           hl.handler(pki.NewHTTPHandler(chain, s.CRLPath())),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			MaxHeaderBytes:    16 << 10,
		}
		svc, err := tcpService("http", opts.HTTP, srv.Serve, srv.Shutdown)
		if err != nil {
			return err
		}
		services = append(services, svc)
	}
	if (opts.LDAP != "" || opts.LDAPS != "") && s.Config.Directory.External() {
		// The directory is elsewhere: there is no embedded one to serve.
		s.Log.Warn("embedded LDAP not started: the station uses an external directory", "url", s.Config.Directory.URL)
		opts.LDAP, opts.LDAPS = "", ""
		if opts.HTTP == "" && opts.KDC == "" && len(opts.Services) == 0 {
			return errors.New("station: no service to run (the directory is external, so LDAP is not served here)")
		}
	}
	if opts.LDAP != "" || opts.LDAPS != "" {
		store, err := s.Directory()
		if err != nil {
			return err
		}
		cert, err := s.ServiceTLS(opts.Passphrase)
		if err != nil {
			return err
		}
		// SASL EXTERNAL: certificates the station CA issued, not revoked
		// in its database. The CA itself is the only anchor: certificates
		// of a parent CA's other children do not log on here.
		chain, err := s.CAChain()
		if err != nil {
			return err
		}
		db, err := s.CADB()
		if err != nil {
			return err
		}
		clientCAs := x509.NewCertPool()
		clientCAs.AddCert(chain[0])
		srv, err := directory.NewServer(directory.Config{
			Store:      store,
			TLSConfig:  &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12},
			Log:        s.Log,
			ClientCAs:  clientCAs,
			Revocation: CARevocation(db, chain[0]),
			Realm:      s.Config.Realm,
		})
		if err != nil {
			return err
		}
		// Shutdown is shared by both listeners; a second call is harmless.
		for _, l := range []struct {
			name, addr string
			serve      func(net.Listener) error
		}{{"ldap", opts.LDAP, srv.Serve}, {"ldaps", opts.LDAPS, srv.ServeTLS}} {
			if l.addr == "" {
				continue
			}
			svc, err := tcpService(l.name, l.addr, l.serve, srv.Shutdown)
			if err != nil {
				return err
			}
			services = append(services, svc)
		}
	}
	if opts.KDC != "" {
		mode, err := kdc.ParseMappingMode(s.Config.KDC.StrongMapping)
		if err != nil {
			return err
		}
		k, err := s.NewKDC(KDCOptions{UDP: opts.KDC, TCP: opts.KDC, StrongMapping: mode, Passphrase: opts.Passphrase})
		if err != nil {
			return err
		}
		if err := k.Listen(); err != nil {
			return fmt.Errorf("station: kdc on %s: %w", opts.KDC, err)
		}
		kctx, cancel := context.WithCancel(context.Background())
		var udpAddr string
		if a := k.UDPAddr(); a != nil {
			udpAddr = a.String()
		}
		services = append(services, &service{
			name: "kdc", addr: k.TCPAddr().String(), udpAddr: udpAddr,
			run:  func() error { return k.Serve(kctx) },
			stop: func(context.Context) error { cancel(); return k.Close() },
		})
	}
	for _, o := range opts.Services {
		svc, err := tcpService(o.Name, o.Addr, o.Serve, o.Shutdown)
		if err != nil {
			return err
		}
		services = append(services, svc)
	}
	errc := make(chan error, len(services))
	var wg sync.WaitGroup
	hl.databases(s, opts)
	for _, svc := range services {
		hl.add(svc)
	}
	// Every listener is bound: connections queue until served.
	hl.logReady(services)
	for _, svc := range services {
		wg.Add(1)
		hl.set(svc.name, StateServing)
		go func() {
			defer wg.Done()
			err := svc.run()
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				hl.set(svc.name, StateFailed)
				errc <- fmt.Errorf("station: %s: %w", svc.name, err)
				return
			}
			hl.set(svc.name, StateStopped)
			errc <- nil
		}()
		s.Log.Info("service listening", "service", svc.name, "addr", svc.addr)
		if opts.Ready != nil {
			opts.Ready(svc.name, svc.addr)
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
		if err := svc.stop(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.Log.Warn("stopping service", "service", svc.name, "err", err)
		}
	}
	wg.Wait()
	s.Log.Info("services stopped")
	return runErr
}

// tcpService listens on addr for a server with the usual Serve/Shutdown.
func tcpService(name, addr string, serve func(net.Listener) error, stop func(context.Context) error) (*service, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("station: %s on %s: %w", name, addr, err)
	}
	return &service{
		name: name, addr: ln.Addr().String(),
		run: func() error { return serve(ln) },
		stop: func(ctx context.Context) error {
			ln.Close()
			return stop(ctx)
		},
	}, nil
}
