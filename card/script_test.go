package card

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
)

// scriptCard replays a transcript: each command sent must equal the next
// recorded command, and gets the recorded response.
//
// Transcript files (testdata/*.apdu) have one exchange per pair of lines:
// "> command hex" and "< response hex" (spaces ignored); "#" comments.
type scriptCard struct {
	t     testing.TB
	steps []step
	pos   int
	inTx  int
}

type step struct {
	cmd, resp []byte
	line      int
}

func loadScript(t testing.TB, name string) *scriptCard {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return parseScript(t, string(b))
}

func parseScript(t testing.TB, s string) *scriptCard {
	t.Helper()
	sc := &scriptCard{t: t}
	var cur *step
	sn := bufio.NewScanner(strings.NewReader(s))
	sn.Buffer(nil, 1<<20)
	line := 0
	for sn.Scan() {
		line++
		l := strings.TrimSpace(sn.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(l[1:], " ", ""))
		if err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		switch l[0] {
		case '>':
			if cur != nil {
				t.Fatalf("line %d: command without response before it", line)
			}
			cur = &step{cmd: b, line: line}
		case '<':
			if cur == nil {
				t.Fatalf("line %d: response without command", line)
			}
			cur.resp = b
			sc.steps = append(sc.steps, *cur)
			cur = nil
		default:
			t.Fatalf("line %d: want > or <", line)
		}
	}
	return sc
}

func (s *scriptCard) Transmit(apdu []byte) ([]byte, error) {
	if len(apdu) == 0 {
		s.t.Fatal("empty APDU sent")
	}
	if s.inTx == 0 {
		s.t.Errorf("APDU %X sent outside a transaction", apdu)
	}
	if s.pos >= len(s.steps) {
		return nil, fmt.Errorf("script: unexpected command %X after the end", apdu)
	}
	st := s.steps[s.pos]
	if !bytes.Equal(apdu, st.cmd) {
		s.t.Errorf("script line %d: sent\n%X\nwant\n%X", st.line, apdu, st.cmd)
		return nil, fmt.Errorf("script: mismatch")
	}
	s.pos++
	return bytes.Clone(st.resp), nil
}

func (s *scriptCard) BeginTransaction() error { s.inTx++; return nil }
func (s *scriptCard) EndTransaction() error {
	if s.inTx == 0 {
		s.t.Error("EndTransaction without BeginTransaction")
	}
	s.inTx--
	return nil
}
func (s *scriptCard) Close() error { return nil }

func (s *scriptCard) done() {
	s.t.Helper()
	if s.pos != len(s.steps) {
		s.t.Errorf("script: %d of %d exchanges not used (next at line %d)", len(s.steps)-s.pos, len(s.steps), s.steps[s.pos].line)
	}
	if s.inTx != 0 {
		s.t.Errorf("script: transaction left open")
	}
}
