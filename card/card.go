package card

// Card is a connection to one card: it carries APDUs. A PC/SC connection
// and the in-process emulator (card/virtual.Card) both implement it.
type Card interface {
	Transmit(apdu []byte) ([]byte, error) // one raw command APDU → response data followed by SW1 SW2
	BeginTransaction() error
	EndTransaction() error
	Close() error
}
