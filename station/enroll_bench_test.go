package station

import (
	"context"
	"testing"
	"time"

	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
)

// BenchmarkEnrollPCSC is one full enrollment (smart-card logon in 9A) of a
// virtual card in a vpcd reader through pcscd, with the demo officer's
// in-process virtual card signing, broken down into the time spent in the
// cards, in the CA, and in the station itself. Between iterations (timer
// stopped) the card is reset to blank by the station, so it comes back as
// a new card.
//
//	scripts/with-pcscd.sh go test ./station -run XXX -bench EnrollPCSC -benchtime 20x
func BenchmarkEnrollPCSC(b *testing.B) {
	for _, alg := range []pki.KeyAlgorithm{pki.P256, pki.RSA2048} {
		b.Run(string(alg), func(b *testing.B) {
			st := demoStation(b)
			ctx := context.Background()
			vs, err := virtual.NewState(777)
			if err != nil {
				b.Fatal(err)
			}
			reader := cardtest.Attach(b, virtual.New(vs, ""))
			var cardT, caT, total time.Duration
			b.ResetTimer()
			for range b.N {
				res, err := st.Enroll(ctx, EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"}, Reader: reader, PIN: alicePIN, KeyAlgorithm: alg})
				if err != nil {
					b.Fatal(err)
				}
				cardT += res.CardTime
				caT += res.CATime
				total += res.Total
				b.StopTimer()
				if _, err := st.ResetCard(ctx, CardRef{Reader: reader}, "benchmark"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			n := float64(b.N)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / n }
			b.ReportMetric(ms(cardT), "card-ms/op")
			b.ReportMetric(ms(caT), "ca-ms/op")
			b.ReportMetric(ms(total-cardT-caT), "station-ms/op")
		})
	}
}
