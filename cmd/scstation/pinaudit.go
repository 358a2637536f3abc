package main

import (
	"errors"
	"fmt"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// auditPINFailure records a PIN or PUK the card refused in the station's
// audit log (station.PINFailed), when there is a data directory: the card
// commands also work on a machine with none. Not being able to record it
// is a warning; the command's own error stands.
func (a *app) auditPINFailure(p *card.PIV, reader, during string, err error) {
	if !station.IsPINFailure(err) {
		return
	}
	var st *station.Station
	var oerr error
	if a.held != nil {
		// Forwarded to the process that holds the data directory: its
		// audit log, already open.
		st, oerr = a.open()
	} else if st, oerr = station.Open(a.dir, a.log); errors.Is(oerr, station.ErrNoDataDir) {
		return
	}
	if oerr == nil {
		oerr = st.PINFailed(p, reader, during, err)
		if cerr := st.Close(); oerr == nil {
			oerr = cerr
		}
	}
	if oerr != nil {
		fmt.Fprintf(a.stderr, "scstation: warning: the failed attempt is not in the audit log: %v\n", oerr)
	}
}
