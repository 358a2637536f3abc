package station_test

import (
	"context"
	"fmt"
	"os"

	"github.com/scstation/scstation/station"
)

// The holder of a data directory runs the commands other processes send
// over its control socket; a client forwards its invocation and relays
// the output.
func ExampleServeControl() {
	dir, err := os.MkdirTemp("", "scstation-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// The holder (serve, the station).
	l, err := station.ListenControl(dir)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		station.ServeControl(ctx, l, func(ctx context.Context, s *station.ControlSession) int {
			fmt.Fprintf(s.Stdout(), "the holder ran %q for a client in %s\n", s.Request.Args, s.Request.Cwd)
			return 0
		}, nil)
	}()

	// A client.
	c, err := station.DialControl(dir)
	if err != nil {
		panic(err)
	}
	code, err := station.Forward(c, &station.ControlRequest{Args: []string{"ca", "list"}, Cwd: "/home/admin"},
		station.ForwardIO{Stdout: os.Stdout, Stderr: os.Stderr})
	fmt.Println("exit", code, err)

	cancel()
	<-done
	l.Close()
	// Output:
	// the holder ran ["ca" "list"] for a client in /home/admin
	// exit 0 <nil>
}
