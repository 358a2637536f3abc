package station_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/station"
)

// A card holder proves that their card works for mail: the card signs a
// message to its own address, it is encrypted to the card's encryption
// certificate, and the card decrypts it; the signature is verified with
// the station's mail policy.
func ExampleStation_MailTest() {
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
	blank, err := virtual.NewState(1235)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := st.Enroll(ctx, station.EnrollRequest{
		User:      "alice",
		Templates: []string{"smime-signing", "smime-encryption"},
		Card:      virtual.New(blank, ""),
		PIN:       "246813",
	}); err != nil {
		log.Fatal(err)
	}
	st.SignOut() // the mail test needs no officer

	_, err = st.MailTest(ctx, station.CardRef{Reader: "alice's card", Card: virtual.New(blank, "")}, "246813",
		func(s station.LogonStep) { fmt.Println("✓", s.Name) })
	fmt.Println(err)
	// Output:
	// ✓ PIN verified on the card
	// ✓ signing certificate checked
	// ✓ encryption certificate checked
	// ✓ message signed on the card
	// ✓ message encrypted
	// ✓ message decrypted on the card
	// ✓ signature verified
	// <nil>
}
