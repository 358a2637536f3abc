// Package station is the application core: it owns the data directory and
// its configuration, creates and opens the certificate authority and the
// directory, and carries out what officers and administrators ask for. The
// command line and the TUI are thin fronts over it.
//
// A data directory's databases belong to one process. A Station opens each
// once and shares it between goroutines; the process that holds the
// directory for long (serve, the TUI) listens on its control socket
// (ListenControl, ServeControl), and other processes forward their commands
// to it (DialControl, Forward) instead of waiting on its file locks.
package station
