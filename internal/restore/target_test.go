package restore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/redact"
)

// Connect's errors say what to check and never show the password, whether
// the driver refuses the URI or cannot reach the deployment.
func TestConnectErrorsHideThePassword(t *testing.T) {
	for _, uri := range []string{
		"mongodb://bob:s3cr3t@localhost:notaport/",
		"mongodb://bob:s3cr3t@127.0.0.1:1/?directConnection=true",
		"mongodb://bob:s3c%zzr3t@localhost/",
		"postgres://bob:s3cr3t@localhost/",
	} {
		_, err := Connect(context.Background(), uri, config.Duration(300*time.Millisecond))
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "s3c%zzr3t") ||
			!strings.Contains(err.Error(), "connect to target") || !strings.Contains(err.Error(), "check the connection string") {
			t.Errorf("Connect(%s): %v; want an error that names what to check and hides the password", redact.URL(uri), err)
		}
	}
	// A driver message quoting the password (none was seen to) is scrubbed,
	// and the cause stays visible to errors.Is.
	cause := errors.New("auth failed for bob:s3cr3t")
	err := scrubbed("mongodb://bob:s3cr3t@h/", cause)
	if strings.Contains(err.Error(), "s3cr3t") || !errors.Is(err, cause) {
		t.Fatalf("scrubbed: %v", err)
	}
}
