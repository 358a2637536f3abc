package virtual

// SetQuickAck switches TCP_QUICKACK on the card's vpcd connection.
func (c *Card) SetQuickAck(on bool) { c.noQuickAck.Store(!on) }

// APDUs is the number of APDUs the card has processed.
func (c *Card) APDUs() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nAPDU
}
