package smime

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
)

// Limits on what we parse: a message, and its header block.
const (
	MaxMessageSize = 256 << 20
	maxHeaderSize  = 256 << 10
	maxHeaderLines = 1000
)

// message is a MIME message split into its header fields (in order, each
// with its raw folded lines) and its body. Line ends are CRLF.
type message struct {
	fields []field
	body   []byte
}

type field struct {
	name string // canonical key, e.g. "Content-Type"
	raw  []byte // the whole field as it appeared, folded lines and final CRLF
}

// canonicalCRLF turns every line end (LF or CRLF; a lone CR is kept) into
// CRLF.
func canonicalCRLF(b []byte) []byte {
	n := bytes.Count(b, []byte{'\n'}) - bytes.Count(b, []byte("\r\n"))
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// parseMessage splits a message (line ends already CRLF) into header fields
// and body.
func parseMessage(b []byte) (*message, error) {
	if len(b) > MaxMessageSize {
		return nil, malformed("MIME message", "larger than %d bytes", MaxMessageSize)
	}
	m := &message{}
	rest := b
	for {
		if len(rest) == 0 {
			// Headers only, no body.
			return m, nil
		}
		if bytes.HasPrefix(rest, []byte("\r\n")) {
			m.body = rest[2:]
			return m, nil
		}
		if len(b)-len(rest) > maxHeaderSize || len(m.fields) >= maxHeaderLines {
			return nil, malformed("MIME header", "header block too large")
		}
		// One field: its first line and any continuation lines.
		end := 0
		for {
			i := bytes.Index(rest[end:], []byte("\r\n"))
			if i < 0 {
				return nil, malformed("MIME header", "header without a line end")
			}
			end += i + 2
			if end >= len(rest) || (rest[end] != ' ' && rest[end] != '\t') {
				break
			}
		}
		raw := rest[:end]
		colon := bytes.IndexByte(raw, ':')
		if colon <= 0 {
			return nil, malformed("MIME header", "line %q is not a header field", truncate(raw))
		}
		name := string(bytes.TrimRight(raw[:colon], " \t"))
		for _, c := range []byte(name) {
			if c <= ' ' || c >= 127 {
				return nil, malformed("MIME header", "bad header field name %q", truncate([]byte(name)))
			}
		}
		m.fields = append(m.fields, field{name: textproto.CanonicalMIMEHeaderKey(name), raw: raw})
		rest = rest[end:]
	}
}

func truncate(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return string(bytes.TrimRight(b, "\r\n"))
}

// get returns the unfolded value of the first field called name.
func (m *message) get(name string) string {
	name = textproto.CanonicalMIMEHeaderKey(name)
	for _, f := range m.fields {
		if f.name == name {
			v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
			v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
			return strings.TrimSpace(string(v))
		}
	}
	return ""
}

// isContentField says whether a header field describes the MIME entity
// (and so travels inside the signature or encryption) rather than the mail.
func isContentField(name string) bool {
	return strings.HasPrefix(name, "Content-")
}

// outer returns the mail's own header fields (From, To, Subject, ...),
// without the Content-* ones and MIME-Version.
func (m *message) outer() []byte {
	var out []byte
	for _, f := range m.fields {
		if !isContentField(f.name) && f.name != "Mime-Version" {
			out = append(out, f.raw...)
		}
	}
	return out
}

// mediaType parses Content-Type; the RFC 2045 default is text/plain.
func (m *message) mediaType() (string, map[string]string, error) {
	ct := m.get("Content-Type")
	if ct == "" {
		return "text/plain", map[string]string{}, nil
	}
	t, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", nil, malformed("Content-Type", "%v", err)
	}
	return t, params, nil
}

// entity builds the MIME entity to sign or encrypt from a mail message:
// its Content-* fields (a text/plain one when there is none) and its body
// in canonical form, 8-bit bodies encoded as quoted-printable (text) or
// base64 so that the signed bytes survive any transport.
func entity(msg []byte) (outer []byte, ent mimeEntity, err error) {
	// The header block is made canonical; the body only once we know it is
	// line-oriented: binary bytes are base64-encoded as they are.
	split := headerEnd(msg)
	if split > maxHeaderSize {
		return nil, mimeEntity{}, malformed("MIME header", "header block too large")
	}
	head := canonicalCRLF(msg[:split])
	if !bytes.HasSuffix(head, []byte("\r\n\r\n")) && len(head) > 0 {
		head = append(head, "\r\n"...)
	}
	m, err := parseMessage(head)
	if err != nil {
		return nil, mimeEntity{}, err
	}
	t, _, err := m.mediaType()
	if err != nil {
		return nil, mimeEntity{}, err
	}
	raw := msg[split:]
	cte := strings.ToLower(m.get("Content-Transfer-Encoding"))
	text := strings.HasPrefix(t, "text/")
	body := raw
	reencode := ""
	switch cte {
	case "base64", "quoted-printable":
		body = canonicalCRLF(raw)
		if !sevenBitSafe(body) {
			return nil, mimeEntity{}, malformed("MIME body", "8-bit data in a %s body", cte)
		}
	case "", "7bit", "8bit", "binary":
		body = canonicalCRLF(raw)
		if !sevenBitSafe(body) {
			if strings.HasPrefix(t, "multipart/") || strings.HasPrefix(t, "message/") {
				return nil, mimeEntity{}, malformed("MIME body", "8-bit data inside %s: encode its parts as quoted-printable or base64 first", t)
			}
			if text && bytes.IndexByte(body, 0) < 0 {
				reencode = "quoted-printable"
			} else {
				// Not text: the bytes as given, line ends untouched.
				reencode, body = "base64", raw
			}
		}
	default:
		return nil, mimeEntity{}, malformed("Content-Transfer-Encoding", "unknown encoding %q", cte)
	}
	var e bytes.Buffer
	e.Grow(len(head) + 128)
	hasType := false
	for _, f := range m.fields {
		if !isContentField(f.name) {
			continue
		}
		if f.name == "Content-Type" {
			hasType = true
		}
		if reencode != "" && f.name == "Content-Transfer-Encoding" {
			continue
		}
		e.Write(f.raw)
	}
	if !hasType {
		e.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	}
	if reencode == "" {
		// The body is used where it lies: no copy of megabytes.
		e.WriteString("\r\n")
		return m.outer(), mimeEntity{head: e.Bytes(), body: body}, nil
	}
	e.WriteString("Content-Transfer-Encoding: " + reencode + "\r\n\r\n")
	eh := bytes.Clone(e.Bytes())
	e.Reset()
	if reencode == "quoted-printable" {
		w := quotedprintable.NewWriter(&e)
		w.Write(body)
		w.Close()
	} else {
		writeBase64(&e, body)
	}
	return m.outer(), mimeEntity{head: eh, body: e.Bytes()}, nil
}

// mimeEntity is a MIME entity in two pieces, its header block (ending in
// the empty line) and its body, so that a large body need not be copied.
type mimeEntity struct{ head, body []byte }

func (e mimeEntity) len() int { return len(e.head) + len(e.body) }

func (e mimeEntity) copyTo(dst []byte) { copy(dst[copy(dst, e.head):], e.body) }

func (e mimeEntity) bytes() []byte {
	b := make([]byte, e.len())
	e.copyTo(b)
	return b
}

// headerEnd is the offset of the body in a message whose line ends may be
// LF or CRLF: just after the first empty line, or the end when there is
// none.
func headerEnd(msg []byte) int {
	for i := 0; i < len(msg); {
		switch {
		case msg[i] == '\n':
			return i + 1
		case msg[i] == '\r' && i+1 < len(msg) && msg[i+1] == '\n':
			return i + 2
		}
		n := bytes.IndexByte(msg[i:], '\n')
		if n < 0 {
			return len(msg)
		}
		i += n + 1
	}
	return len(msg)
}

// sevenBitSafe reports whether a body can travel as 7bit: ASCII without
// NUL, bare CR, and lines of at most 998 octets. It runs over megabytes, so
// it works a word at a time and lets the bytes package find line ends.
func sevenBitSafe(b []byte) bool {
	const high = 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&high != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	if bytes.IndexByte(b, 0) >= 0 || bytes.Count(b, []byte{'\r'}) != bytes.Count(b, []byte("\r\n")) {
		return false
	}
	for rest := b; len(rest) > 0; {
		n := bytes.IndexByte(rest, '\n')
		if n < 0 {
			n = len(rest)
		}
		if n > 999 || (n == 999 && rest[n-1] != '\r') {
			return false
		}
		rest = rest[min(n+1, len(rest)):]
	}
	return true
}

// base64Len is what writeBase64 writes for n bytes.
func base64Len(n int) int { return (n + 56) / 57 * 78 }

// writeBase64 writes b in base64 lines of 76 characters, each ending CRLF.
func writeBase64(w *bytes.Buffer, b []byte) {
	w.Write(appendBase64(make([]byte, 0, base64Len(len(b))), b))
}

// appendBase64 appends b in base64 lines of 76 characters, each ending
// CRLF. With room in dst's capacity nothing is allocated (or cleared:
// fresh memory for megabytes is made with make(0, n), which the runtime
// need not zero), and large inputs are encoded by two goroutines.
func appendBase64(dst, b []byte) []byte {
	const in = 57 // 76 characters, then CRLF
	total := base64Len(len(b))
	if cap(dst)-len(dst) < total {
		dst = slices.Grow(dst, total)
	}
	start := len(dst)
	dst = dst[:start+total]
	encode := func(out, src []byte) {
		for len(src) > 0 {
			n := min(in, len(src))
			l := base64.StdEncoding.EncodedLen(n)
			base64.StdEncoding.Encode(out, src[:n])
			out[l], out[l+1] = '\r', '\n'
			out, src = out[l+2:], src[n:]
		}
	}
	if len(b) < 256<<10 {
		encode(dst[start:], b)
		return dst[:start+used(len(b))]
	}
	// Split at a line boundary: both halves are whole 57-byte lines but
	// the last.
	half := len(b) / 2 / in * in
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		encode(dst[start:], b[:half])
	}()
	encode(dst[start+half/in*78:], b[half:])
	wg.Wait()
	return dst[:start+used(len(b))]
}

// used is the exact length appendBase64 writes for n bytes (the last line
// may be short).
func used(n int) int {
	const in = 57
	full := n / in * 78
	if r := n % in; r > 0 {
		full += base64.StdEncoding.EncodedLen(r) + 2
	}
	return full
}

// decodeBase64 decodes a base64 body, ignoring line breaks and white space.
func decodeBase64(what string, body []byte) ([]byte, error) {
	out := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	// The decoder skips CR and LF itself; other white space needs a copy.
	if bytes.IndexAny(body, " \t") < 0 {
		n, err := base64.StdEncoding.Decode(out, body)
		if err != nil {
			return nil, malformed(what, "bad base64: %v", err)
		}
		return out[:n], nil
	}
	clean := make([]byte, 0, len(body))
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		clean = append(clean, c)
	}
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, malformed(what, "bad base64: %v", err)
	}
	return out[:n], nil
}

// boundary makes a random multipart boundary.
func boundary() string {
	var b [16]byte
	rand.Read(b[:])
	return "----=_smime_" + hex.EncodeToString(b[:])
}

// pkcs7Part decodes the body of an application/pkcs7-mime or -signature
// part to its DER (base64, or binary).
func pkcs7Part(what string, m *message) ([]byte, error) {
	switch cte := strings.ToLower(m.get("Content-Transfer-Encoding")); cte {
	case "base64":
		return decodeBase64(what, m.body)
	case "", "binary", "7bit", "8bit":
		// openssl -outform DER pasted into a MIME part, or base64 without
		// the header: take base64 when it decodes.
		if der, err := decodeBase64(what, m.body); err == nil && len(der) > 0 {
			return der, nil
		}
		return m.body, nil
	default:
		return nil, malformed(what, "unexpected Content-Transfer-Encoding %q", cte)
	}
}

// splitSigned splits the body of a multipart/signed message into the raw
// bytes of the first part (exactly what was signed) and the second part.
func splitSigned(body []byte, bnd string) (signed, sig []byte, err error) {
	if bnd == "" || len(bnd) > 70 {
		return nil, nil, malformed("multipart/signed", "missing or bad boundary")
	}
	delim := []byte("--" + bnd)
	// The first delimiter: at the start of the body or of a line.
	start := -1
	if bytes.HasPrefix(body, delim) {
		start = 0
	} else if i := bytes.Index(body, append([]byte("\r\n"), delim...)); i >= 0 {
		start = i + 2
	}
	if start < 0 {
		return nil, nil, malformed("multipart/signed", "no boundary line")
	}
	p, err := afterDelimLine(body, start+len(delim))
	if err != nil {
		return nil, nil, err
	}
	crlfDelim := append([]byte("\r\n"), delim...)
	i := bytes.Index(body[p:], crlfDelim)
	if i < 0 {
		return nil, nil, malformed("multipart/signed", "only one part")
	}
	signed = body[p : p+i]
	q := p + i + len(crlfDelim)
	if bytes.HasPrefix(body[q:], []byte("--")) {
		return nil, nil, malformed("multipart/signed", "no signature part")
	}
	q, err = afterDelimLine(body, q)
	if err != nil {
		return nil, nil, err
	}
	j := bytes.Index(body[q:], crlfDelim)
	if j < 0 {
		return nil, nil, malformed("multipart/signed", "no closing boundary")
	}
	return signed, body[q : q+j], nil
}

// afterDelimLine skips the transport padding and CRLF after a delimiter.
func afterDelimLine(body []byte, p int) (int, error) {
	for p < len(body) && (body[p] == ' ' || body[p] == '\t') {
		p++
	}
	if !bytes.HasPrefix(body[p:], []byte("\r\n")) {
		return 0, malformed("multipart/signed", "bad boundary line")
	}
	return p + 2, nil
}

// fromAddress returns the address in the From field.
func fromAddress(m *message) (string, error) {
	from := m.get("From")
	if from == "" {
		return "", errors.New("the message has no From header")
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", errors.New("cannot parse the From header: " + err.Error())
	}
	return a.Address, nil
}
