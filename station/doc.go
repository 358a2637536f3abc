// Package station is the application core: it owns the data directory and
// its configuration, creates and opens the certificate authority and the
// directory, and carries out what officers and administrators ask for. The
// command line and the TUI are thin fronts over it.
package station
