package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

func (a *app) serveCommand() *cobra.Command {
	var httpAddr string
	cmd := &cobra.Command{
		Use:   "serve [--http ADDR]",
		Short: "Run the embedded services: HTTP (CA certificates and CRL)",
		Long: `serve runs the embedded services until interrupted. Today that is the HTTP
service, which serves the CA certificate (` + pki.PathCACert + `), the chain
(` + pki.PathChain + `) and the current CRL (` + pki.PathCRL + `). An empty address
turns a service off. Addresses default to the configuration's [services].`,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) error {
			if !cmd.Flags().Changed("http") {
				httpAddr = st.Config.Services.HTTP
			}
			if httpAddr == "" {
				return usagef("no service to run")
			}
			chain, err := st.CAChain()
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", httpAddr)
			if err != nil {
				return err
			}
			srv := &http.Server{
				Handler:           pki.NewHTTPHandler(chain, st.CRLPath()),
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       30 * time.Second,
				WriteTimeout:      30 * time.Second,
				MaxHeaderBytes:    16 << 10,
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			a.log.Info("HTTP service listening", "addr", ln.Addr().String())
			fmt.Fprintf(cmd.OutOrStdout(), "http %s\n", ln.Addr())
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			a.log.Info("stopped")
			return nil
		}),
	}
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP address (CA certificates and CRL)")
	return cmd
}
