package station_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/scstation/scstation/station"
)

// ExampleStation_ExportKDC writes what an MIT krb5kdc needs to log on
// the station's users with their cards, then again: the KDC certificate
// is kept, the CRL and configuration are rewritten.
func ExampleStation_ExportKDC() {
	tmp, err := os.MkdirTemp("", "scstation-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	st, err := station.Init(filepath.Join(tmp, "st"), station.InitOptions{Domain: "example.test"})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	for range 2 {
		res, err := st.ExportKDC(context.Background(), station.KDCExportOptions{Dir: filepath.Join(tmp, "export"), Hostname: "kdc.example.test"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(res.Issued, res.Certificate.DNSNames, res.Files)
	}
	// Output:
	// true [kdc.example.test] [kdc.key kdc.pem ca.pem crl.pem kdc.conf krb5.conf]
	// false [kdc.example.test] [ca.pem crl.pem kdc.conf krb5.conf]
}
