package virtual

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.json")
	st, err := NewState(777, WithPIN([]byte("24681357")))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v %v", fi.Mode(), err)
	}
	h := host{t, New(st, path)}
	h.selectPIV()
	h.auth()
	pub := h.generate(0x9A, AlgECCP256).(*ecdsa.PublicKey)
	h.ok(0xDB, 0x3F, 0xFF, append(hx("5C035FC105"), mkTLV(0x53, certObject([]byte("not a cert")))...))
	h.verify("000000") // wrong: counter 2
	h.ok(0xFF, 0xFF, 0xFE, append([]byte{AlgAES128, 0x9B, 16}, bytes.Repeat([]byte{7}, 16)...))

	// Every change is on disk already: no Close, no explicit Save.
	loaded, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.PINRetries != 2 || loaded.ManagementKeyAlg != AlgAES128 || loaded.Serial != 777 ||
		!bytes.Equal(loaded.Objects[0x5FC105], st.Objects[0x5FC105]) || !bytes.Equal(loaded.GUID(), st.GUID()) {
		t.Fatal("reloaded state differs")
	}
	h2 := host{t, New(loaded, path)}
	h2.selectPIV()
	if sw := h2.verify("24681357"); sw != swOK {
		t.Fatalf("PIN after reload: %04X", sw)
	}
	digest := sha256.Sum256([]byte("persist"))
	sig, sw := h2.sign(AlgECCP256, 0x9A, digest[:])
	if sw != swOK || !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatal("key did not survive the restart")
	}
	if sw := h2.mutualAuth(AlgAES128, bytes.Repeat([]byte{7}, 16)); sw != swOK {
		t.Fatal("management key did not survive the restart")
	}
	again, _ := LoadState(path)
	if again.PINRetries != 3 {
		t.Fatal("counter reset not saved")
	}
}

func TestSaveFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := os.Mkdir(path, 0o700); err != nil { // rename over a directory fails
		t.Fatal(err)
	}
	st, _ := NewState(1)
	h := host{t, New(st, path)}
	h.selectPIV()
	if _, sw := h.raw(hx("0020008000")); sw != 0x63C3 { // no change, no save
		t.Fatalf("status query %04X", sw)
	}
	if sw := h.verify("000000"); sw != swMemoryFailure {
		t.Fatalf("unsaved change answered %04X", sw)
	}
	// The counter stays decremented in memory (fail closed).
	if st.PINRetries != 2 {
		t.Fatal("counter")
	}
}

func TestLoadStateRejectsDamage(t *testing.T) {
	st, _ := NewState(5)
	good, _ := st.Marshal()
	dir := t.TempDir()
	for name, mutate := range map[string]func(m map[string]any){
		"format":  func(m map[string]any) { m["format"] = 99 },
		"pin":     func(m map[string]any) { m["pin"] = "MTI=" },
		"retries": func(m map[string]any) { m["pin_retries"] = 9 },
		"mgmt":    func(m map[string]any) { m["mgmt_key"] = "AAEC" },
		"key": func(m map[string]any) {
			m["keys"].(map[string]any)["f9"].(map[string]any)["pkcs8"] = "AAEC"
		},
	} {
		var m map[string]any
		json.Unmarshal(good, &m)
		mutate(m)
		b, _ := json.Marshal(m)
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		_, err := LoadState(p)
		if err == nil {
			t.Errorf("%s: damaged state accepted", name)
		} else if strings.Contains(err.Error(), "123456") {
			t.Errorf("%s: error shows the PIN: %v", name, err)
		}
	}
	p := filepath.Join(dir, "truncated")
	os.WriteFile(p, good[:len(good)/2], 0o600)
	if _, err := LoadState(p); err == nil {
		t.Error("truncated state accepted")
	}
}

// TestCrashDuringSave kills a process that keeps changing and saving a
// card's state, at random moments; the file must always load, and the
// temporary files a killed save leaves behind must not matter.
func TestCrashDuringSave(t *testing.T) {
	if os.Getenv("VIRTUAL_CRASH_HELPER") != "" {
		crashHelper(os.Getenv("VIRTUAL_CRASH_HELPER"))
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "card.json")
	st, _ := NewState(9)
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringSave$")
		cmd.Env = append(os.Environ(), "VIRTUAL_CRASH_HELPER="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+15*i) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		loaded, err := LoadState(path)
		if err != nil {
			t.Fatalf("after kill #%d: %v", i, err)
		}
		if v := loaded.Objects[0x5FC10D]; v != nil && len(v) != 4000 {
			t.Fatalf("after kill #%d: object of %d bytes", i, len(v))
		}
	}
	if _, ok := mustLoad(t, path).Objects[0x5FC10D]; !ok {
		t.Fatal("the helper never saved")
	}
	temps, _ := filepath.Glob(filepath.Join(dir, ".card.json.tmp*"))
	t.Logf("%d temporary files left by killed saves", len(temps))
	// A torn temporary file from a crash is ignored.
	torn := filepath.Join(dir, ".card.json.tmp123456")
	os.WriteFile(torn, []byte(`{"format":1,"serial":`), 0o600)
	if _, err := LoadState(path); err != nil {
		t.Fatal(err)
	}
}

func mustLoad(t *testing.T, path string) *State {
	t.Helper()
	st, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func crashHelper(path string) {
	st, err := LoadState(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c := New(st, path)
	c.Transmit(mkAPDU(0, 0xA4, 0x04, 0x00, pivAID))
	c.mgmtAuthed = true // the helper only needs to write
	obj := bytes.Repeat([]byte("x"), 4000)
	for i := 0; ; i++ {
		obj[0] = byte(i)
		data := append(hx("5C035FC10D"), mkTLV(0x53, obj)...)
		for len(data) > 255 {
			c.Transmit(mkAPDU(0x10, 0xDB, 0x3F, 0xFF, data[:255]))
			data = data[255:]
		}
		r, err := c.Transmit(mkAPDU(0x00, 0xDB, 0x3F, 0xFF, data))
		if err != nil || !bytes.Equal(r, []byte{0x90, 0x00}) {
			fmt.Fprintf(os.Stderr, "PUT DATA: %x %v\n", r, err)
			os.Exit(1)
		}
	}
}
