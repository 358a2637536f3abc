package main

import (
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/tui/sshadmin"
)

func (a *app) serveCommand() *cobra.Command {
	var httpAddr, ldapAddr, ldapsAddr, kdcAddr, sshAddr, passFile string
	var sshIdle, sshMax time.Duration
	cmd := &cobra.Command{
		Use:   "serve [--kdc ADDR] [--ldap ADDR] [--ldaps ADDR] [--http ADDR] [--ssh ADDR]",
		Short: "Run the embedded services: KDC, LDAP, LDAPS, HTTP (CA certificates and CRL) and SSH (admin station)",
		Long: `serve runs the embedded services until interrupted:

  http   the CA certificate (` + pki.PathCACert + `), the chain (` + pki.PathChain + `)
         and the current CRL (` + pki.PathCRL + `)
  ldap   the directory, LDAP v3 with StartTLS
  ldaps  the directory over TLS
  kdc    Kerberos (UDP and TCP on the same address): PKINIT smart-card logon,
         encrypted timestamp, service tickets; its PKINIT certificate comes
         from the station CA (kdc template). Not started when config.toml
         says [kdc] mode = "external" (see scstation kdc export)
  ssh    the administrators' station (CA, Cards, Directory and Audit
         screens) over SSH; off unless --ssh or [services] ssh is set.
         Public keys only: the keys in DIR/` + sshadmin.AuthorizedKeysFile + ` (OpenSSH
         format, read at every login; missing means nobody gets in). Host
         key: DIR/` + sshadmin.HostKeyFile + `, made on the first start. Every
         action is audited as ssh:<key comment>:<key fingerprint>

The HTTP service also answers GET /health with JSON: each service's
addresses and state, the CA certificate's expiry, the CRL's next update and
whether it is overdue, and the databases in use; 200 when all is well, 503
otherwise. serve logs one "ready" line with every address, and a warning when
the CRL is overdue. SIGINT or SIGTERM stop it cleanly (exit 0).

An empty address turns a service off; addresses default to the
configuration's [services]. LDAPS and StartTLS present a certificate from the
station CA (services/tls.crt), issued when missing or near expiry; so is the
KDC's; either may need the CA key passphrase.

While serve runs it holds the data directory: other scstation commands on the
same directory (user add, ca revoke, ...) are sent to it over the control
socket DIR/control.sock (owner only) and run by serve, with the same result
as when serve is not running. A second serve on the directory is refused.

` + passphraseHelp,
		Args: cobra.NoArgs,
		RunE: a.withStation(func(cmd *cobra.Command, _ []string, st *station.Station) (err error) {
			opts := station.ServeOptions{
				HTTP: st.Config.Services.HTTP, LDAP: st.Config.Services.LDAP, LDAPS: st.Config.Services.LDAPS,
				KDC:        st.Config.Services.KDC,
				Passphrase: a.passphrase(passFile),
				Ready: func(name, addr string) {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", name, addr)
				},
			}
			if cmd.Flags().Changed("http") {
				opts.HTTP = httpAddr
			}
			if cmd.Flags().Changed("ldap") {
				opts.LDAP = ldapAddr
			}
			if cmd.Flags().Changed("ldaps") {
				opts.LDAPS = ldapsAddr
			}
			if cmd.Flags().Changed("kdc") {
				opts.KDC = kdcAddr
			}
			ssh := st.Config.Services.SSH
			if cmd.Flags().Changed("ssh") {
				ssh = sshAddr
			}
			if opts.HTTP == "" && opts.LDAP == "" && opts.LDAPS == "" && opts.KDC == "" && ssh == "" {
				return usagef("no service to run")
			}
			// Close the databases before exiting, and say so: whoever
			// waits on the exit finds the data directory free.
			defer func() {
				if cerr := st.Close(); cerr != nil {
					err = errors.Join(err, cerr)
					return
				}
				a.log.Info("databases closed")
			}()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// Hold the data directory before the services open its
			// databases, so that commands started meanwhile come here.
			release, err := a.holdDataDir(ctx, st)
			if err != nil {
				return err
			}
			defer release()
			if ssh != "" {
				// 0 on the command line turns a timeout off.
				off := func(d time.Duration) time.Duration {
					if d == 0 {
						return -1
					}
					return d
				}
				srv, err := sshadmin.New(sshadmin.Config{
					Addr: ssh, Station: st, Log: a.log,
					IdleTimeout: off(sshIdle), MaxTimeout: off(sshMax),
				})
				if err != nil {
					return err
				}
				opts.Services = append(opts.Services, station.Service{Name: "ssh", Addr: ssh, Serve: srv.ServeListener, Shutdown: srv.Shutdown})
			}
			return st.Serve(ctx, opts)
		}),
	}
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP address (CA certificates and CRL)")
	cmd.Flags().StringVar(&ldapAddr, "ldap", "", "LDAP address (StartTLS available)")
	cmd.Flags().StringVar(&ldapsAddr, "ldaps", "", "LDAPS address")
	cmd.Flags().StringVar(&kdcAddr, "kdc", "", "KDC address, UDP and TCP")
	cmd.Flags().StringVar(&sshAddr, "ssh", "", "SSH address of the administrators' station")
	cmd.Flags().DurationVar(&sshIdle, "ssh-idle-timeout", sshadmin.DefaultIdleTimeout, "end an SSH connection after this long without traffic (0: never)")
	cmd.Flags().DurationVar(&sshMax, "ssh-max-timeout", sshadmin.DefaultMaxTimeout, "end an SSH connection after this long in all (0: never)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the CA key passphrase")
	cmd.MarkFlagFilename("passphrase-file")
	return cmd
}
