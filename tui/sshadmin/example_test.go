package sshadmin_test

import (
	"fmt"

	"github.com/scstation/scstation/tui/sshadmin"
)

// The audit actor of a session names the key as authorized_keys comments
// it, and by the fingerprint ssh-keygen -l prints for it.
func ExampleActor() {
	keys, bad := sshadmin.ParseAuthorizedKeys([]byte(`# administrators
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKUedsv69nOSwn1ikz/267YzYNNMFkIgUVc/YzoLrjOi alice@laptop
command="/bin/sh" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKUedsv69nOSwn1ikz/267YzYNNMFkIgUVc/YzoLrjOi options are not honoured
`))
	fmt.Println("skipped lines:", bad)
	for _, k := range keys {
		fmt.Println(sshadmin.Actor("admin", k.Comment, k.Key))
	}
	// Output:
	// skipped lines: [3]
	// ssh:alice@laptop:SHA256:S8Qri4nMv4fMqPuynyTTvIy04iTidE6yB+pvn/x1Tv8
}
