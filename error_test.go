package haven_test

import (
	"errors"
	"fmt"
	"testing"

	"haven"
)

// An internal error's text names our side (a root key id, a file, a
// query): it goes to the log, and the client sees only a generic message.
func TestInternalErrorMessagesNeverReachTheClient(t *testing.T) {
	for _, err := range []error{
		haven.Errorf(haven.EINTERNAL, "key is wrapped by root local:abc, which is not configured"),
		fmt.Errorf("loading: %w", haven.Errorf(haven.EINTERNAL, "root local:abc cannot unwrap")),
		errors.New("open /var/lib/haven/keys/root.key: permission denied"),
	} {
		if got := haven.ErrorMessage(err); got != "Internal error." {
			t.Errorf("ErrorMessage(%v) = %q", err, got)
		}
	}
	if got := haven.ErrorMessage(haven.Errorf(haven.EINVALID, "date of birth must be YYYY-MM-DD")); got != "date of birth must be YYYY-MM-DD" {
		t.Errorf("a client error lost its message: %q", got)
	}
}
