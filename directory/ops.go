package directory

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	bolt "go.etcd.io/bbolt"
)

// Access control, built in:
//   - anonymous clients read the root DSE, the subschema entry, and the
//     public attributes of entries (names, mail, certificates, group
//     membership); filters on anything else match nothing for them;
//   - authenticated users read every attribute but userPassword, which is
//     never returned to anyone and never matches a filter or a compare;
//   - members of the admin group (cn=admins,ou=groups; nesting counts)
//     add, modify, delete and rename entries, and set others' passwords;
//   - every user may change their own password with the Password Modify
//     extended operation, giving the old one.
// Simple binds and password changes in the clear are refused from peers
// off loopback unless Config.AllowInsecureBind says otherwise.

func canReadFor(bindDN string) func(*AttributeType) bool {
	if bindDN == "" {
		return func(t *AttributeType) bool { return t.Public && !t.Secret }
	}
	return func(t *AttributeType) bool { return !t.Secret }
}

func (c *conn) handle(ctx context.Context, m *message) {
	// A critical control the operation does not understand fails it
	// (RFC 4511 §4.1.11).
	for _, ctl := range m.controls {
		known := ctl.oid == oidManageDsaIT || ctl.oid == oidPagedResults && m.op == opSearchRequest
		if ctl.critical && !known {
			c.finish(ctx, m, ResultUnavailableCriticalExtension, "", "control "+ctl.oid+" is not supported")
			return
		}
	}
	switch r := m.req.(type) {
	case *searchRequest:
		c.handleSearch(ctx, m, r)
	case *addRequest:
		by, ok := c.requireWrite(ctx, m)
		if !ok {
			return
		}
		_, err := c.srv.store.Add(by, &Entry{DN: r.dn, Attrs: r.attrs})
		c.finishErr(ctx, m, err)
		c.logWrite(m, by, r.dn, err)
	case *modifyRequest:
		by, ok := c.requireWrite(ctx, m)
		if !ok {
			return
		}
		_, err := c.srv.store.Modify(by, r.dn, r.mods)
		c.finishErr(ctx, m, err)
		c.logWrite(m, by, r.dn, err)
	case *deleteRequest:
		by, ok := c.requireWrite(ctx, m)
		if !ok {
			return
		}
		err := c.srv.store.Delete(by, r.dn)
		c.finishErr(ctx, m, err)
		c.logWrite(m, by, r.dn, err)
	case *modDNRequest:
		by, ok := c.requireWrite(ctx, m)
		if !ok {
			return
		}
		_, err := c.srv.store.ModifyDN(by, r.dn, r.newRDN, r.deleteOld, r.newSuperior)
		c.finishErr(ctx, m, err)
		c.logWrite(m, by, r.dn, err)
	case *compareRequest:
		bindDN, _ := c.identity()
		ok, err := c.srv.store.Compare(r.dn, r.attr, r.value, canReadFor(bindDN))
		switch {
		case err != nil:
			c.finishErr(ctx, m, err)
		case ok:
			c.finish(ctx, m, ResultCompareTrue, "", "")
		default:
			c.finish(ctx, m, ResultCompareFalse, "", "")
		}
	case *extendedRequest:
		switch r.oid {
		case oidWhoAmI:
			bindDN, _ := c.identity()
			authz := ""
			if bindDN != "" {
				authz = "dn:" + bindDN
			}
			c.extended(ctx, m, ResultSuccess, "", "", []byte(authz))
		case oidPasswordModify:
			c.handlePasswordModify(ctx, m, r)
		default:
			c.extended(ctx, m, ResultProtocolError, "", "extended operation "+r.oid+" is not supported", nil)
		}
	default:
		c.finish(ctx, m, ResultProtocolError, "", "unexpected request")
	}
}

// abandoned reports whether the client abandoned the operation: then no
// response may be sent (RFC 4511 §4.11).
func abandoned(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }

func (c *conn) finish(ctx context.Context, m *message, code ResultCode, matched, diag string, controls ...[]byte) {
	if abandoned(ctx) {
		return
	}
	r := newResponse(m.id, responseOp(m.op))
	r.result(code, matched, diag)
	c.send(r.finish(controls...), true)
	r.release()
}

func (c *conn) finishErr(ctx context.Context, m *message, err error) {
	if err == nil {
		c.finish(ctx, m, ResultSuccess, "", "")
		return
	}
	code, matched, diag := c.errorResult(m, err)
	c.finish(ctx, m, code, matched, diag)
}

func (c *conn) extended(ctx context.Context, m *message, code ResultCode, name, diag string, value []byte) {
	if abandoned(ctx) {
		return
	}
	r := newResponse(m.id, opExtendedResponse)
	r.result(code, "", diag)
	if name != "" {
		r.str(0x8a, name)
	}
	if value != nil {
		r.octets(0x8b, value)
	}
	c.send(r.finish(), true)
	r.release()
}

func (c *conn) logWrite(m *message, by, dn string, err error) {
	if err != nil {
		c.srv.log.Info("LDAP write refused", "op", opNames[m.op], "by", by, "dn", dn, "result", CodeOf(err).String())
		return
	}
	c.srv.log.Info("LDAP write", "op", opNames[m.op], "by", by, "dn", dn)
}

// requireWrite checks that the connection may change the directory.
func (c *conn) requireWrite(ctx context.Context, m *message) (string, bool) {
	bindDN, _ := c.identity()
	if bindDN == "" {
		c.finish(ctx, m, ResultStrongerAuthRequired, "", "modifications require authentication")
		return "", false
	}
	if !c.srv.store.IsAdmin(bindDN) {
		c.finish(ctx, m, ResultInsufficientAccessRights, "", "only members of "+c.srv.store.AdminGroupDN()+" may change the directory")
		return "", false
	}
	return bindDN, true
}

// ---- bind ------------------------------------------------------------------------

func (c *conn) setBind(dn string) {
	c.mu.Lock()
	c.bindDN = dn
	c.mu.Unlock()
}

func (c *conn) clearOK() bool {
	_, tlsOn := c.identity()
	return tlsOn || c.loopback || c.srv.insec
}

func (c *conn) handleBind(m *message, r *bindRequest) {
	ctx := context.Background()
	// Whatever happens, the connection is anonymous until a bind succeeds.
	c.setBind("")
	bindResult := func(code ResultCode, diag string) { c.finish(ctx, m, code, "", diag) }
	switch {
	case r.version != 3:
		bindResult(ResultProtocolError, "only LDAP version 3 is supported")
	case !r.simple && r.mech == "EXTERNAL" && c.srv.external:
		c.handleExternalBind(m, r)
	case !r.simple:
		bindResult(ResultAuthMethodNotSupported, fmt.Sprintf("SASL mechanism %q is not supported", r.mech))
	case r.name == "" && len(r.password) == 0:
		bindResult(ResultSuccess, "") // anonymous
	case len(r.password) == 0:
		// RFC 4513 §5.1.2: an unauthenticated bind is not a login.
		bindResult(ResultUnwillingToPerform, "unauthenticated bind (a name with an empty password) is not allowed")
	case r.name == "":
		bindResult(ResultInvalidCredentials, "invalid credentials")
	case !c.clearOK():
		bindResult(ResultConfidentialityRequired, "a simple bind needs TLS (LDAPS or StartTLS)")
	default:
		dn, err := c.srv.store.Authenticate(r.name, r.password)
		if err != nil {
			code, _, diag := c.errorResult(m, err)
			c.srv.log.Info("LDAP bind failed", "name", r.name, "remote", c.raw.RemoteAddr().String(), "result", code.String())
			bindResult(code, diag)
			return
		}
		c.setBind(dn)
		c.srv.log.Debug("LDAP bind", "dn", dn, "remote", c.raw.RemoteAddr().String())
		bindResult(ResultSuccess, "")
	}
}

// handleExternalBind is a SASL EXTERNAL bind (RFC 4422 appendix A, RFC
// 4513 §5.2.3): the identity is the user the TLS client certificate maps
// to; an authorization identity, if the client gives one, must name that
// same user.
func (c *conn) handleExternalBind(m *message, r *bindRequest) {
	ctx := context.Background()
	remote := c.raw.RemoteAddr().String()
	refuse := func(code ResultCode, diag string) {
		c.srv.log.Info("LDAP EXTERNAL bind refused", "remote", remote, "result", code.String(), "reason", diag)
		c.finish(ctx, m, code, "", diag)
	}
	c.mu.Lock()
	tlsOn, cert := c.tlsOn, c.peer
	c.mu.Unlock()
	if !tlsOn {
		refuse(ResultInappropriateAuthentication, "SASL EXTERNAL needs TLS (LDAPS or StartTLS) with a client certificate")
		return
	}
	if cert == nil {
		refuse(ResultInappropriateAuthentication, "SASL EXTERNAL needs a client certificate, and none was presented")
		return
	}
	if c.srv.revoked != nil {
		revoked, reason, err := c.srv.revoked(cert)
		switch {
		case err != nil:
			c.srv.log.Warn("LDAP EXTERNAL bind: revocation check failed", "serial", cert.SerialNumber.Text(16), "err", err)
			refuse(ResultInvalidCredentials, "the client certificate's revocation status is unknown")
			return
		case revoked:
			refuse(ResultInvalidCredentials, "the client certificate is revoked ("+reason+")")
			return
		}
	}
	u, err := c.srv.store.CertificateUser(cert, c.srv.realm)
	if err != nil {
		code, _, diag := c.errorResult(m, err)
		refuse(code, diag)
		return
	}
	if len(r.creds) > 0 {
		ok, err := c.authzMatches(string(r.creds), u)
		if err != nil || !ok {
			refuse(ResultInappropriateAuthentication, "the authorization identity is not the certificate's user")
			return
		}
	}
	c.setBind(u.DN)
	c.srv.log.Info("LDAP EXTERNAL bind", "dn", u.DN, "serial", cert.SerialNumber.Text(16), "remote", remote)
	c.finish(ctx, m, ResultSuccess, "", "")
}

// authzMatches says whether an authzId (RFC 4513 §5.2.1.8: "dn:DN" or
// "u:name") names the user u.
func (c *conn) authzMatches(authz string, u *User) (bool, error) {
	switch {
	case strings.HasPrefix(authz, "dn:"):
		d, err := ParseDN(authz[3:])
		if err != nil {
			return false, err
		}
		ud, err := ParseDN(u.DN)
		if err != nil {
			return false, err
		}
		return d.Equal(ud), nil
	case strings.HasPrefix(authz, "u:"):
		name := authz[2:]
		if name == "" || strings.Contains(name, "=") {
			return false, nil
		}
		v, err := c.srv.store.User(name)
		if err != nil {
			return false, err
		}
		return strings.EqualFold(MustNorm(v.DN), MustNorm(u.DN)), nil
	}
	return false, nil
}

// ---- StartTLS -------------------------------------------------------------------------

// handleStartTLS runs on the reader goroutine; false ends the connection.
func (c *conn) handleStartTLS(m *message) bool {
	ctx := context.Background()
	_, tlsOn := c.identity()
	c.mu.Lock()
	busy := len(c.ops) > 0
	c.mu.Unlock()
	switch {
	case c.srv.tls == nil:
		c.extended(ctx, m, ResultProtocolError, oidStartTLS, "TLS is not configured", nil)
		return true
	case tlsOn:
		c.extended(ctx, m, ResultOperationsError, oidStartTLS, "TLS is already established", nil)
		return true
	case busy:
		c.extended(ctx, m, ResultOperationsError, oidStartTLS, "operations are in progress", nil)
		return true
	case c.br.Buffered() > 0:
		c.disconnect(ResultProtocolError, "data after the StartTLS request")
		return false
	}
	c.extended(ctx, m, ResultSuccess, oidStartTLS, "", nil)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	tc := tls.Server(c.nc, c.srv.tls)
	tc.SetDeadline(time.Now().Add(c.srv.limits.ReadTimeout))
	if err := tc.Handshake(); err != nil {
		c.srv.log.Debug("StartTLS handshake failed", "remote", c.raw.RemoteAddr().String(), "err", err)
		return false
	}
	tc.SetDeadline(time.Time{})
	c.nc = tc
	c.br.Reset(tc)
	c.bw.Reset(tc)
	c.mu.Lock()
	c.tlsOn = true
	c.peer = verifiedPeer(tc)
	c.mu.Unlock()
	return true
}

// ---- password modify (RFC 3062) ---------------------------------------------------------

func (c *conn) handlePasswordModify(ctx context.Context, m *message, r *extendedRequest) {
	fail := func(code ResultCode, diag string) { c.extended(ctx, m, code, "", diag, nil) }
	var ident, oldPw, newPw []byte
	var hasNew bool
	if r.hasValue && len(r.value) > 0 {
		p, err := decodePacket(r.value, 16)
		if err != nil || !isSequence(p) || len(p.Children) > 3 {
			fail(ResultProtocolError, "malformed PasswdModifyRequestValue")
			return
		}
		last := -1
		for _, ch := range p.Children {
			if ch.ClassType != ber.ClassContext || ch.TagType != ber.TypePrimitive || int(ch.Tag) <= last || ch.Tag > 2 {
				fail(ResultProtocolError, "malformed PasswdModifyRequestValue")
				return
			}
			last = int(ch.Tag)
			switch ch.Tag {
			case 0:
				ident = content(ch)
			case 1:
				oldPw = content(ch)
			case 2:
				newPw, hasNew = content(ch), true
			}
		}
	}
	bindDN, _ := c.identity()
	if bindDN == "" {
		fail(ResultUnwillingToPerform, "only an authenticated user may change a password")
		return
	}
	if !c.clearOK() {
		fail(ResultConfidentialityRequired, "changing a password needs TLS")
		return
	}
	target := bindDN
	if len(ident) > 0 {
		var found bool
		c.srv.store.db.View(func(tx *bolt.Tx) error {
			id, ok := c.srv.store.resolveBindName(tx, string(ident))
			if ok {
				target, _ = c.srv.store.dnOf(tx, id, nil)
				found = true
			}
			return nil
		})
		if !found {
			fail(ResultNoSuchObject, "no such user")
			return
		}
	}
	self := strings.EqualFold(MustNorm(target), MustNorm(bindDN))
	admin := c.srv.store.IsAdmin(bindDN)
	if !self && !admin {
		fail(ResultInsufficientAccessRights, "only members of "+c.srv.store.AdminGroupDN()+" may set others' passwords")
		return
	}
	if self && !admin {
		if len(oldPw) == 0 {
			fail(ResultUnwillingToPerform, "the old password is required")
			return
		}
		if _, err := c.srv.store.Authenticate(bindDN, oldPw); err != nil {
			fail(ResultInvalidCredentials, "the old password is wrong")
			return
		}
	}
	var gen []byte
	if !hasNew || len(newPw) == 0 {
		newPw = []byte(GeneratePassword())
		gen = newPw
	}
	if err := c.srv.store.SetPasswordDN(bindDN, target, newPw); err != nil {
		code, _, diag := c.errorResult(m, err)
		fail(code, diag)
		return
	}
	c.srv.log.Info("LDAP password changed", "dn", target, "by", bindDN)
	var value []byte
	if gen != nil {
		var e benc
		s := e.begin(tagSequence)
		e.octets(0x80, gen)
		e.end(s)
		value = e.b
	}
	c.extended(ctx, m, ResultSuccess, "", "", value)
}

// MustNorm normalizes a DN, or returns it unchanged when it does not parse.
func MustNorm(dn string) string {
	d, err := ParseDN(dn)
	if err != nil {
		return dn
	}
	return d.Norm()
}

// ---- search ---------------------------------------------------------------------------------

// selection is a search's attribute list (RFC 4511 §4.5.1.8).
type selection struct {
	user, operational bool
	names             []*AttributeType
}

func parseSelection(attrs []string) selection {
	var s selection
	if len(attrs) == 0 {
		s.user = true
		return s
	}
	for _, a := range attrs {
		switch a {
		case "*":
			s.user = true
		case "+":
			s.operational = true
		case "1.1":
		default:
			if d, ok := parseAttrDesc(a); ok && !d.unknownOpt && !slices.Contains(s.names, d.typ) {
				s.names = append(s.names, d.typ)
			}
		}
	}
	return s
}

func (s selection) wants(t *AttributeType) bool {
	if slices.Contains(s.names, t) {
		return true
	}
	if t.Operational {
		return s.operational
	}
	return s.user
}

var computedAttrs = []string{"structuralObjectClass", "entryDN", "subschemaSubentry", "hasSubordinates"}

// encodeEntry encodes a SearchResultEntry; the caller releases it.
func (c *conn) encodeEntry(id int64, e *Entry, sel selection, typesOnly bool, canRead func(*AttributeType) bool, computed func(*Entry, *AttributeType) [][]byte) *response {
	r := newResponse(id, opSearchEntry)
	r.str(tagOctets, e.DN)
	s := r.begin(tagSequence)
	put := func(t *AttributeType, vals [][]byte) {
		a := r.begin(tagSequence)
		r.str(tagOctets, t.wireName())
		set := r.begin(tagSet)
		if !typesOnly {
			for _, v := range vals {
				r.octets(tagOctets, v)
			}
		}
		r.end(set)
		r.end(a)
	}
	for _, a := range e.Attrs {
		if a.typ.Secret || !canRead(a.typ) || !sel.wants(a.typ) || len(a.Values) == 0 {
			continue
		}
		put(a.typ, a.Values)
	}
	if computed != nil {
		for _, n := range computedAttrs {
			t := attrByCanonical[n]
			if sel.wants(t) && e.get(t) == nil {
				if vals := computed(e, t); len(vals) > 0 {
					put(t, vals)
				}
			}
		}
	}
	r.end(s)
	r.finish()
	return r
}

// pagedState is what a paged-results cookie carries: where the last page
// ended and how many entries went out, authenticated with the server's
// key and bound to the request, so a cookie works only for the search
// (and the identity) it came from.
type pagedState struct {
	lastID, count uint64
}

func (c *conn) cookieMAC(fp []byte, st pagedState) []byte {
	h := hmac.New(sha256.New, c.srv.secret[:])
	h.Write(fp)
	h.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, st.lastID), st.count))
	return h.Sum(nil)[:16]
}

func (c *conn) makeCookie(fp []byte, st pagedState) []byte {
	b := binary.BigEndian.AppendUint64(nil, st.lastID)
	b = binary.BigEndian.AppendUint64(b, st.count)
	return append(b, c.cookieMAC(fp, st)...)
}

func (c *conn) readCookie(fp, cookie []byte) (pagedState, bool) {
	if len(cookie) != 32 {
		return pagedState{}, false
	}
	st := pagedState{lastID: binary.BigEndian.Uint64(cookie), count: binary.BigEndian.Uint64(cookie[8:])}
	return st, hmac.Equal(cookie[16:], c.cookieMAC(fp, st))
}

func searchFingerprint(bindDN string, r *searchRequest) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%t\x00%s", MustNorm(bindDN), MustNorm(r.base), r.scope, r.sizeLimit, r.typesOnly, r.filter.String())
	for _, a := range r.attrs {
		fmt.Fprintf(h, "\x00%s", strings.ToLower(a))
	}
	return h.Sum(nil)
}

func decodePagedControl(v []byte) (size int64, cookie []byte, ok bool) {
	p, err := decodePacket(v, 8)
	if err != nil || !isSequence(p) || len(p.Children) != 2 {
		return 0, nil, false
	}
	size, ok1 := integer(p.Children[0], ber.TagInteger)
	cookie, ok2 := octets(p.Children[1])
	if !ok1 || !ok2 || size < 0 {
		return 0, nil, false
	}
	return size, cookie, true
}

func pagedResponseControl(cookie []byte) []byte {
	var e benc
	s := e.begin(tagSequence)
	e.integer(tagInteger, 0)
	e.octets(tagOctets, cookie)
	e.end(s)
	return encodeControl(oidPagedResults, false, e.b)
}

func (c *conn) handleSearch(ctx context.Context, m *message, r *searchRequest) {
	bindDN, _ := c.identity()
	canRead := canReadFor(bindDN)
	if r.timeLimit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(r.timeLimit)*time.Second)
		defer func() {
			// A client time limit is not an abandon.
			cancel()
		}()
	}
	var paged bool
	var pageSize int64
	var cookie []byte
	for _, ctl := range m.controls {
		if ctl.oid == oidPagedResults {
			var ok bool
			if pageSize, cookie, ok = decodePagedControl(ctl.value); !ok {
				c.finish(ctx, m, ResultProtocolError, "", "malformed paged results control")
				return
			}
			paged = true
		}
	}
	sel := parseSelection(r.attrs)
	send := func(e *Entry, computed func(*Entry, *AttributeType) [][]byte) error {
		resp := c.encodeEntry(m.id, e, sel, r.typesOnly, canRead, computed)
		err := c.send(resp.b, false)
		resp.release()
		return err
	}
	env := &evalEnv{canRead: canRead}

	// The root DSE and the subschema entry are computed.
	base := r.base
	if base == "" && r.scope == ScopeBase {
		if e := c.rootDSE(); r.filter.eval(e, env) == triTrue {
			send(e, nil)
		}
		c.finish(ctx, m, ResultSuccess, "", "")
		return
	}
	if isSubschemaDN(base) {
		if e := subschemaEntry(); r.scope == ScopeBase && r.filter.eval(e, env) == triTrue {
			send(e, nil)
		}
		c.finish(ctx, m, ResultSuccess, "", "")
		return
	}
	scope := r.scope
	if base == "" {
		// Below the root DSE: the one naming context.
		base = c.srv.store.BaseDN()
		if scope == ScopeOne {
			scope = ScopeBase
		} else {
			scope = ScopeSub
		}
	}
	limits := c.srv.limits
	req := SearchRequest{BaseDN: base, Scope: scope, Filter: r.filter, CanRead: canRead}
	var st pagedState
	var fp []byte
	if paged {
		fp = searchFingerprint(bindDN, r)
		if len(cookie) > 0 {
			var ok bool
			if st, ok = c.readCookie(fp, cookie); !ok {
				c.finish(ctx, m, ResultUnwillingToPerform, "", "the paged results cookie is not valid for this search")
				return
			}
			if pageSize == 0 {
				// The client abandons the paged search.
				c.finish(ctx, m, ResultSuccess, "", "", pagedResponseControl(nil))
				return
			}
		}
		req.After = st.lastID
		req.Limit = int(min(pageSize, int64(limits.MaxPageSize)))
		if pageSize == 0 {
			req.Limit = limits.MaxPageSize
		}
	} else {
		req.Limit = limits.MaxSizeLimit
	}
	sizeCapped := false
	if r.sizeLimit > 0 {
		remaining := r.sizeLimit - int64(st.count)
		if remaining <= int64(req.Limit) {
			req.Limit = int(max(remaining, 0))
			sizeCapped = true
		}
	}
	computed := func(e *Entry, t *AttributeType) [][]byte { return c.srv.store.computed(e, t) }
	sent := 0
	var res SearchResult
	var err error
	if req.Limit > 0 || !sizeCapped {
		res, err = c.srv.store.Search(ctx, req, func(e *Entry) error {
			sent++
			return send(e, computed)
		})
	} else {
		// The client's size limit is spent: any further match exceeds it.
		probe := req
		probe.Limit = 1
		_, err = c.srv.store.Search(ctx, probe, func(*Entry) error { res.More = true; return errStop })
	}
	if err != nil {
		if abandoned(ctx) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return
		}
		code, matched, diag := c.errorResult(m, err)
		var ctls [][]byte
		if paged {
			ctls = append(ctls, pagedResponseControl(nil))
		}
		c.finish(ctx, m, code, matched, diag, ctls...)
		return
	}
	switch {
	case paged && res.More && !sizeCapped:
		next := pagedState{lastID: res.LastID, count: st.count + uint64(sent)}
		c.finish(ctx, m, ResultSuccess, "", "", pagedResponseControl(c.makeCookie(fp, next)))
	case paged && res.More:
		c.finish(ctx, m, ResultSizeLimitExceeded, "", "size limit exceeded", pagedResponseControl(nil))
	case paged:
		c.finish(ctx, m, ResultSuccess, "", "", pagedResponseControl(nil))
	case res.More && !sizeCapped:
		c.finish(ctx, m, ResultSizeLimitExceeded, "", fmt.Sprintf("more than %d entries match; use the paged results control", limits.MaxSizeLimit))
	case res.More:
		c.finish(ctx, m, ResultSizeLimitExceeded, "", "size limit exceeded")
	default:
		c.finish(ctx, m, ResultSuccess, "", "")
	}
}

// isSubschemaDN says whether a DN names the subschema entry.
func isSubschemaDN(dn string) bool {
	if len(dn) < len("cn=subschema") || !strings.Contains(strings.ToLower(dn), "subschema") {
		return false
	}
	p, err := parseDNCached(dn)
	return err == nil && p.norm == "cn=subschema"
}

// computed returns a computed attribute's values for a stored entry.
func (s *Store) computed(e *Entry, t *AttributeType) [][]byte {
	var out [][]byte
	s.db.View(func(tx *bolt.Tx) error {
		out = s.virtualValues(tx, e, t)
		return nil
	})
	return out
}

// ---- the root DSE and the subschema entry ------------------------------------------------------

const vendorName = "scstation"

// Version is reported as vendorVersion; the command sets it at start.
var Version = "devel"

func mkEntry(dn string, kv ...any) *Entry {
	e := &Entry{DN: dn}
	for i := 0; i+1 < len(kv); i += 2 {
		t := attrByCanonical[kv[i].(string)]
		var vals [][]byte
		switch v := kv[i+1].(type) {
		case string:
			vals = [][]byte{[]byte(v)}
		case []string:
			for _, s := range v {
				vals = append(vals, []byte(s))
			}
		case [][]byte:
			vals = v
		}
		e.set(t, vals...)
	}
	return e
}

func (c *conn) rootDSE() *Entry {
	ext := []string{oidWhoAmI, oidPasswordModify}
	if c.srv.tls != nil {
		ext = append([]string{oidStartTLS}, ext...)
	}
	var sasl []string
	if c.srv.external {
		sasl = []string{"EXTERNAL"}
	}
	return mkEntry("",
		"supportedSASLMechanisms", sasl,
		"objectClass", "top",
		"namingContexts", c.srv.store.BaseDN(),
		"subschemaSubentry", SubschemaDN,
		"supportedLDAPVersion", "3",
		"supportedControl", []string{oidPagedResults, oidManageDsaIT},
		"supportedExtension", ext,
		// All operational attributes ("+"), absolute true and false
		// filters, modify-increment.
		"supportedFeatures", []string{"1.3.6.1.4.1.4203.1.5.1", "1.3.6.1.4.1.4203.1.5.3", "1.3.6.1.1.14"},
		"vendorName", vendorName,
		"vendorVersion", Version,
	)
}

func subschemaEntry() *Entry {
	v := subschemaValues()
	return mkEntry(SubschemaDN,
		"objectClass", []string{"top", "subentry", "subschema"},
		"cn", "Subschema",
		"attributeTypes", v["attributeTypes"],
		"objectClasses", v["objectClasses"],
		"matchingRules", v["matchingRules"],
		"ldapSyntaxes", v["ldapSyntaxes"],
	)
}
