// Package tui is the full-screen station built with Bubble Tea. It shows
// what package station decides.
package tui
