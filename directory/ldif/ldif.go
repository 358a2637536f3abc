// Package ldif reads and writes LDIF (RFC 2849): content records and
// change records (add, delete, modify, modrdn/moddn), with base64 values,
// line folding and comments. It knows no schema: names and values are
// passed through as given.
//
// The reader refuses URL values ("attr:< file:///...", which would let a
// file read other files) and critical controls, and bounds the size of a
// record. The writer base64-encodes every value that is not a SAFE-STRING
// (binary, non-ASCII, or with leading or trailing space, colon or '<'),
// and folds lines at 76 columns as OpenLDAP's tools do.
package ldif

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// Attr is an attribute description (with options, e.g.
// userCertificate;binary) and its values.
type Attr struct {
	Name   string
	Values [][]byte
}

// Mod is one change of a modify record.
type Mod struct {
	Op     string // add, delete, replace or increment
	Attr   string
	Values [][]byte
}

// Record is one LDIF record.
type Record struct {
	DN string
	// ChangeType is "" for a content record, else add, delete, modify,
	// modrdn or moddn.
	ChangeType string
	// Attrs are the attributes of a content or add record, in order, one
	// Attr per line group of the same name.
	Attrs []Attr
	// Mods are the changes of a modify record.
	Mods []Mod
	// NewRDN, DeleteOldRDN and NewSuperior are a modrdn record's.
	NewRDN       string
	DeleteOldRDN bool
	NewSuperior  string
	// Line is the line the record starts on.
	Line int
}

// MaxRecord bounds the bytes of one record (after unfolding and decoding).
const MaxRecord = 16 << 20

// SyntaxError is malformed LDIF.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("ldif: line %d: %s", e.Line, e.Msg) }

// Reader reads records.
type Reader struct {
	br      *bufio.Reader
	line    int
	peeked  *string
	started bool
	version bool
}

// NewReader reads LDIF from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// rawLine returns the next physical line without its end of line.
func (r *Reader) rawLine() (string, bool, error) {
	if r.peeked != nil {
		s := *r.peeked
		r.peeked = nil
		return s, true, nil
	}
	var buf []byte
	for {
		chunk, isPrefix, err := r.br.ReadLine()
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				break
			}
			return "", false, err
		}
		buf = append(buf, chunk...)
		if len(buf) > MaxRecord {
			return "", false, &SyntaxError{r.line + 1, "line too long"}
		}
		if !isPrefix {
			break
		}
	}
	r.line++
	return string(buf), true, nil
}

func (r *Reader) unread(s string) { r.peeked = &s }

// logicalLines reads one record's lines, unfolded, without comments. It
// returns nil at the end of input.
func (r *Reader) logicalLines() ([]string, int, error) {
	var lines []string
	start := 0
	size := 0
	inComment := false
	for {
		s, ok, err := r.rawLine()
		if err == io.EOF {
			return lines, start, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return lines, start, nil
		}
		switch {
		case s == "":
			if len(lines) > 0 {
				return lines, start, nil
			}
			inComment = false
			continue
		case s[0] == ' ':
			if inComment {
				continue
			}
			if len(lines) == 0 {
				return nil, 0, &SyntaxError{r.line, "continuation line without a line to continue"}
			}
			lines[len(lines)-1] += s[1:]
			size += len(s) - 1
		case s[0] == '#':
			inComment = true
			continue
		default:
			inComment = false
			if len(lines) == 0 {
				start = r.line
			}
			lines = append(lines, s)
			size += len(s)
		}
		if size > MaxRecord {
			return nil, 0, &SyntaxError{start, fmt.Sprintf("record larger than %d bytes", MaxRecord)}
		}
	}
}

// parseLine splits "name: value", "name:: base64" and refuses "name:< url".
func parseLine(s string, line int) (string, []byte, error) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", nil, &SyntaxError{line, fmt.Sprintf("%q is not an attribute line", trunc(s))}
	}
	name, rest := s[:i], s[i+1:]
	switch {
	case strings.HasPrefix(rest, ":"):
		v, err := base64.StdEncoding.DecodeString(strings.TrimLeft(rest[1:], " "))
		if err != nil {
			return "", nil, &SyntaxError{line, fmt.Sprintf("%s: bad base64: %v", name, err)}
		}
		return name, v, nil
	case strings.HasPrefix(rest, "<"):
		return "", nil, &SyntaxError{line, fmt.Sprintf("%s: URL values are not accepted", name)}
	}
	return name, []byte(strings.TrimLeft(rest, " ")), nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Next returns the next record, or io.EOF after the last.
func (r *Reader) Next() (*Record, error) {
	for {
		lines, start, err := r.logicalLines()
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 {
			return nil, io.EOF
		}
		if !r.started {
			r.started = true
			if name, v, err := parseLine(lines[0], start); err == nil && strings.EqualFold(name, "version") {
				if string(v) != "1" {
					return nil, &SyntaxError{start, fmt.Sprintf("LDIF version %q is not 1", v)}
				}
				r.version = true
				lines = lines[1:]
				start++
				if len(lines) == 0 {
					continue
				}
			}
		}
		return parseRecord(lines, start)
	}
}

func parseRecord(lines []string, start int) (*Record, error) {
	rec := &Record{Line: start}
	name, v, err := parseLine(lines[0], start)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(name, "dn") {
		return nil, &SyntaxError{start, fmt.Sprintf("a record starts with dn:, not %q", trunc(lines[0]))}
	}
	rec.DN = string(v)
	rest := lines[1:]
	ln := start + 1
	// Controls (RFC 2849): "control: oid [true|false] [value]".
	for len(rest) > 0 {
		n, v, err := parseLine(rest[0], ln)
		if err != nil || !strings.EqualFold(n, "control") {
			break
		}
		f := strings.Fields(string(v))
		if len(f) > 1 && f[1] == "true" {
			return nil, &SyntaxError{ln, fmt.Sprintf("critical control %s is not supported", f[0])}
		}
		rest = rest[1:]
		ln++
	}
	if len(rest) > 0 {
		n, v, err := parseLine(rest[0], ln)
		if err == nil && strings.EqualFold(n, "changetype") {
			rec.ChangeType = strings.ToLower(strings.TrimSpace(string(v)))
			rest = rest[1:]
			ln++
		}
	}
	switch rec.ChangeType {
	case "", "add":
		if len(rest) == 0 {
			return nil, &SyntaxError{start, "an entry without attributes"}
		}
		for _, l := range rest {
			n, v, err := parseLine(l, ln)
			if err != nil {
				return nil, err
			}
			rec.addValue(n, v)
			ln++
		}
	case "delete":
		if len(rest) != 0 {
			return nil, &SyntaxError{ln, "a delete record has no more lines"}
		}
	case "modrdn", "moddn":
		for _, l := range rest {
			n, v, err := parseLine(l, ln)
			if err != nil {
				return nil, err
			}
			switch strings.ToLower(n) {
			case "newrdn":
				rec.NewRDN = string(v)
			case "deleteoldrdn":
				switch string(v) {
				case "0":
				case "1":
					rec.DeleteOldRDN = true
				default:
					return nil, &SyntaxError{ln, "deleteoldrdn is 0 or 1"}
				}
			case "newsuperior":
				rec.NewSuperior = string(v)
			default:
				return nil, &SyntaxError{ln, fmt.Sprintf("%s in a modrdn record", n)}
			}
			ln++
		}
		if rec.NewRDN == "" {
			return nil, &SyntaxError{start, "a modrdn record needs newrdn"}
		}
	case "modify":
		for i := 0; i < len(rest); {
			op, attr, err := parseLine(rest[i], ln)
			if err != nil {
				return nil, err
			}
			op = strings.ToLower(op)
			switch op {
			case "add", "delete", "replace", "increment":
			default:
				return nil, &SyntaxError{ln, fmt.Sprintf("%q is not a modify operation", op)}
			}
			m := Mod{Op: op, Attr: string(attr)}
			i++
			ln++
			for ; i < len(rest) && rest[i] != "-"; i++ {
				n, v, err := parseLine(rest[i], ln)
				if err != nil {
					return nil, err
				}
				if !strings.EqualFold(n, m.Attr) {
					return nil, &SyntaxError{ln, fmt.Sprintf("%s in a change of %s", n, m.Attr)}
				}
				m.Values = append(m.Values, v)
				ln++
			}
			if i < len(rest) {
				i++ // the "-"
				ln++
			}
			rec.Mods = append(rec.Mods, m)
		}
	default:
		return nil, &SyntaxError{start, fmt.Sprintf("changetype %q is not supported", rec.ChangeType)}
	}
	return rec, nil
}

func (rec *Record) addValue(name string, v []byte) {
	for i := range rec.Attrs {
		if strings.EqualFold(rec.Attrs[i].Name, name) {
			rec.Attrs[i].Values = append(rec.Attrs[i].Values, v)
			return
		}
	}
	rec.Attrs = append(rec.Attrs, Attr{Name: name, Values: [][]byte{v}})
}

// ---- writing ----------------------------------------------------------------

// Writer writes content records.
type Writer struct {
	w *bufio.Writer
	// Width is where lines fold (default 76, as OpenLDAP's tools;
	// 0 or less after NewWriter: no folding).
	Width int
	err   error
}

// NewWriter writes LDIF to w. It writes no "version: 1" line: OpenLDAP's
// slapadd refuses one (slapcat writes none); Reader takes both.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 64<<10), Width: 76} }

// Safe reports whether a value may be written as is (RFC 2849
// SAFE-STRING, and no trailing space).
func Safe(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	switch v[0] {
	case ' ', ':', '<':
		return false
	}
	if v[len(v)-1] == ' ' {
		return false
	}
	for _, c := range v {
		if c == 0 || c == '\n' || c == '\r' || c >= 0x80 {
			return false
		}
	}
	return true
}

func (w *Writer) line(name string, v []byte) {
	var s string
	if Safe(v) {
		s = name + ": " + string(v)
	} else {
		s = name + ":: " + base64.StdEncoding.EncodeToString(v)
	}
	w.fold(s)
}

func (w *Writer) fold(s string) {
	if w.Width <= 1 || len(s) <= w.Width {
		w.w.WriteString(s)
		w.w.WriteByte('\n')
		return
	}
	w.w.WriteString(s[:w.Width])
	w.w.WriteByte('\n')
	s = s[w.Width:]
	for len(s) > 0 {
		n := min(len(s), w.Width-1)
		w.w.WriteByte(' ')
		w.w.WriteString(s[:n])
		w.w.WriteByte('\n')
		s = s[n:]
	}
}

// WriteEntry writes a content record.
func (w *Writer) WriteEntry(dn string, attrs []Attr) error {
	if w.err != nil {
		return w.err
	}
	w.line("dn", []byte(dn))
	for _, a := range attrs {
		for _, v := range a.Values {
			w.line(a.Name, v)
		}
	}
	_, w.err = w.w.WriteString("\n")
	return w.err
}

// WriteComment writes "# text" lines.
func (w *Writer) WriteComment(text string) error {
	for _, l := range strings.Split(text, "\n") {
		w.w.WriteString("# " + l + "\n")
	}
	_, err := w.w.WriteString("\n")
	return err
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}

// Values is a convenience for tests and callers: the values of the first
// attribute named name (case-insensitive, options included in the name).
func (rec *Record) Values(name string) [][]byte {
	for _, a := range rec.Attrs {
		if strings.EqualFold(a.Name, name) {
			return a.Values
		}
	}
	return nil
}

// ReadAll reads every record.
func ReadAll(r io.Reader) ([]*Record, error) {
	var out []*Record
	lr := NewReader(r)
	for {
		rec, err := lr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}
