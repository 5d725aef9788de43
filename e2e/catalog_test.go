package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/example/monolith/internal/apptest"
)

func TestCatalogCommandNeedsNoBrokerOrDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, format := range []string{"table", "asyncapi"} {
		// Neither the broker nor the database answers: catalog must touch neither.
		cmd := exec.CommandContext(ctx, apptest.Binary, "--config", "../configs/amqp.yaml", "catalog", "--format", format)
		cmd.Env = append(os.Environ(), "APP_BUS_AMQP_URL=amqp://guest:guest@127.0.0.1:1/", "APP_BUS_CONNECT_TIMEOUT=1s",
			"APP_DATABASE_DSN=postgres://nobody@127.0.0.1:1/none")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("app catalog --format %s: %v\n%s", format, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "identity.user.registered") || !strings.Contains(stdout.String(), "customer.create-profile") {
			t.Fatalf("app catalog --format %s prints neither topics nor handlers:\n%s", format, stdout.String())
		}
	}
}
