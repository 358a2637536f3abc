package station_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/station"
)

// The demo officer signs in with their (virtual) agent card and enrolls
// a blank card for alice: logon in 9A, S/MIME signing in 9C.
func ExampleStation_Enroll() {
	dir, err := os.MkdirTemp("", "scstation-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, _, err := station.Demo(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.SignInVirtual(ctx, station.DemoOfficer, station.DemoOfficerPIN); err != nil {
		log.Fatal(err)
	}
	blank, err := virtual.NewState(1234)
	if err != nil {
		log.Fatal(err)
	}
	res, err := st.Enroll(ctx, station.EnrollRequest{
		User:      "alice",
		Templates: []string{"smartcard-logon", "smime-signing"},
		Card:      virtual.New(blank, ""),
		RandomPIN: true,
		Progress:  func(s station.Step) { fmt.Println(s.Name) },
	})
	if err != nil {
		log.Fatal(err)
	}
	for i, c := range res.Certificates {
		fmt.Println(res.Slots[i], c.Subject.CommonName)
	}
	// Output:
	// card
	// management key
	// record
	// secure
	// keys
	// requests
	// issue
	// write
	// activate
	// 9A Alice Smith
	// 9C Alice Smith
}
