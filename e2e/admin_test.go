package e2e_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/monolith/internal/apptest"
)

// TestAdminListener checks the ops API and /metrics answer on the admin
// listener only, and only to requests carrying admin.token when it is set.
func TestAdminListener(t *testing.T) {
	token := "e2e-" + apptest.RandomID() + apptest.RandomID()
	in := apptest.Start(t, "configs/app.yaml", "APP_DATABASE_DSN="+filepath.Join(t.TempDir(), "app.db"), "APP_ADMIN_TOKEN="+token)
	admin := in.Admin()

	for _, path := range []string{"/api/ops/poison", "/api/ops/poison/audit", "/metrics"} {
		if r := in.Do(t, "GET", path, nil); r.Status != http.StatusNotFound {
			t.Errorf("public listener: GET %s = %d %s, want 404", path, r.Status, r.Raw)
		}
		if r := in.WithToken(token).Do(t, "GET", path, nil); r.Status != http.StatusNotFound {
			t.Errorf("public listener with the token: GET %s = %d, want 404", path, r.Status)
		}
		for name, anonymous := range map[string]*apptest.Instance{"no token": admin.WithToken(""), "wrong token": admin.WithToken(token + "x")} {
			r := anonymous.Do(t, "GET", path, nil)
			if r.Status != http.StatusUnauthorized || r.ErrorCode() != "unauthorized" {
				t.Errorf("admin listener, %s: GET %s = %d %s, want 401 unauthorized", name, path, r.Status, r.Raw)
			}
		}
	}
	admin.Expect(t, http.StatusOK, "GET", "/api/ops/poison", nil)
	if metrics := admin.Expect(t, http.StatusOK, "GET", "/metrics", nil).Raw; !strings.Contains(metrics, "go_goroutines") {
		t.Fatalf("/metrics on the admin listener lacks go_goroutines")
	}
	in.Expect(t, http.StatusOK, "GET", "/readyz", nil)
	if strings.Contains(in.Logs.String(), token) {
		t.Fatalf("the admin token is in the logs:\n%s", in.Logs)
	}
}
