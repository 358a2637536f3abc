// Package tui is the full-screen station built with Bubble Tea v2: it
// shows what package station decides, and asks station to act.
//
// One root Model owns the screens (Home, CA, Directory, Officer, Enroll,
// Cards, Audit, Logon), draws the frame (tabs, status, help) and routes
// messages: key presses go to the active screen after the global keys,
// everything else to every screen. A screen
// is a component: a model that can be sized and that lists its keys for
// the help line (bubbles/help). All I/O (databases, the CA key, the
// directory, the card reader monitor, the embedded services) runs in
// tea.Cmds or in goroutines that post messages, never in Update; results
// of an older request are dropped when a newer one was made. All styles
// are in styles.go, with a set for NO_COLOR.
//
// Run draws the station on a terminal; New makes the model for tests and
// other programs (teatest, SSH sessions).
package tui
