package station

import (
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkDemo is the first `scstation demo`: a new demo realm (CA,
// users, the officer's virtual card), as Demo makes it.
//
//	go test ./station -run XXX -bench Demo -benchtime 10x
func BenchmarkDemo(b *testing.B) {
	dir := b.TempDir()
	for i := range b.N {
		st, created, err := Demo(filepath.Join(dir, strconv.Itoa(i)), nil)
		if err != nil || !created {
			b.Fatal(err, created)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}
