package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/testenv"
)

func TestGoChannelSQLite(t *testing.T) {
	in := apptest.Start(t, "configs/app.yaml", "APP_DATABASE_DSN="+filepath.Join(t.TempDir(), "app.db"))
	scenario(t, []*apptest.Instance{in})
}

func TestAMQPPostgres(t *testing.T) {
	url := testenv.RequireAMQP(t)
	dsn := dbtest.Config(t, db.DriverPostgres).DSN
	// A virtual host of its own keeps this run's queues away from any other.
	vhost := "e2e-" + apptest.RandomID()
	rabbitmqctl(t, "add_vhost", vhost)
	t.Cleanup(func() { rabbitmqctl(t, "delete_vhost", vhost) })
	rabbitmqctl(t, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
	env := []string{"APP_DATABASE_DSN=" + dsn, "APP_BUS_AMQP_URL=" + strings.TrimSuffix(url, "/") + "/" + vhost}
	scenario(t, []*apptest.Instance{apptest.Start(t, "configs/amqp.yaml", env...), apptest.Start(t, "configs/amqp.yaml", env...)})
}

func TestRedisStreamPostgres(t *testing.T) {
	addr := testenv.RequireRedis(t)
	dsn := dbtest.Config(t, db.DriverPostgres).DSN
	// Database 9 is this suite's own; it starts and ends empty.
	client := redis.NewClient(&redis.Options{Addr: addr, DB: 9})
	flush := func() { _ = client.FlushDB(context.Background()).Err() }
	flush()
	t.Cleanup(func() { flush(); _ = client.Close() })
	env := []string{"APP_DATABASE_DSN=" + dsn, "APP_BUS_REDISSTREAM_ADDR=" + addr, "APP_BUS_REDISSTREAM_DB=9"}
	scenario(t, []*apptest.Instance{apptest.Start(t, "configs/redisstream.yaml", env...), apptest.Start(t, "configs/redisstream.yaml", env...)})
}

func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	if out, err := testenv.RabbitMQCtl(args...).CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// scenario is the user's story, the same on every configuration.
func scenario(t *testing.T, ins []*apptest.Instance) {
	first, last := ins[0], ins[len(ins)-1]
	run := apptest.RandomID()
	registered := 0 // users the API accepted: each must end with exactly one customer
	register := func(in *apptest.Instance, name string) apptest.Response {
		t.Helper()
		r := in.Expect(t, http.StatusCreated, "POST", "/api/identity/users",
			map[string]string{"email": name + "-" + run + "@example.com", "name": name, "password": "correct horse battery"})
		registered++
		return r
	}
	customerOf := func(in *apptest.Instance, userID string) map[string]any {
		t.Helper()
		var c map[string]any
		apptest.Eventually(t, "a customer for user "+userID, func() bool {
			list, _ := in.Expect(t, http.StatusOK, "GET", "/api/customers?user_id="+userID, nil).Body["customers"].([]any)
			if len(list) > 1 {
				t.Fatalf("user %s has %d customers", userID, len(list))
			}
			if len(list) == 1 {
				c = list[0].(map[string]any)
			}
			return c != nil
		})
		return c
	}

	// Health and readiness on the public listener; metrics and the ops API
	// on the admin listener only.
	for _, in := range ins {
		in.Expect(t, http.StatusOK, "GET", "/healthz", nil)
		in.Expect(t, http.StatusOK, "GET", "/readyz", nil)
		in.Expect(t, http.StatusNotFound, "GET", "/metrics", nil)
		in.Expect(t, http.StatusNotFound, "GET", "/api/ops/poison", nil)
		in.Admin().Expect(t, http.StatusOK, "GET", "/api/ops/poison", nil)
	}

	// Register: the customer context creates the profile from the event.
	alice := register(first, "alice")
	if alice.Str("status") != "pending" || alice.Str("id") == "" || strings.Contains(alice.Raw, "password") || strings.Contains(alice.Raw, "$2a$") {
		t.Fatalf("registration response %s", alice.Raw)
	}
	aliceID := alice.Str("id")
	first.Expect(t, http.StatusOK, "GET", "/api/identity/users/"+aliceID, nil)
	aliceCustomer := customerOf(last, aliceID)
	if aliceCustomer["tier"] != "free" || aliceCustomer["active"] != true {
		t.Fatalf("new customer %v, want tier free and active", aliceCustomer)
	}

	// Settings: declared by their contexts, stored at start, validated on update.
	apptest.Eventually(t, "identity's settings stored", func() bool {
		return first.Do(t, "GET", "/api/settings/identity", nil).Status == http.StatusOK
	})
	apptest.Eventually(t, "customer's settings stored", func() bool {
		return first.Do(t, "GET", "/api/settings/customer", nil).Status == http.StatusOK
	})
	if code := last.Expect(t, http.StatusUnprocessableEntity, "PUT", "/api/settings/customer/default_tier", map[string]any{"value": "gold"}).ErrorCode(); code != "validation_failed" {
		t.Fatalf("invalid setting error code %q", code)
	}
	last.Expect(t, http.StatusOK, "PUT", "/api/settings/customer/default_tier", map[string]any{"value": "pro"})
	first.Expect(t, http.StatusOK, "PUT", "/api/settings/identity/registration_open", map[string]any{"value": false})
	// Every instance's cache follows: registration closes everywhere...
	for i, in := range ins {
		apptest.Eventually(t, fmt.Sprintf("registration closed on instance %d", i), func() bool {
			r := in.Do(t, "POST", "/api/identity/users", map[string]string{"email": fmt.Sprintf("closed%d-%s@example.com", i, run), "name": "Closed", "password": "correct horse battery"})
			if r.Status == http.StatusCreated {
				registered++
			}
			return r.Status == http.StatusForbidden
		})
	}
	last.Expect(t, http.StatusOK, "PUT", "/api/settings/identity/registration_open", map[string]any{"value": true})
	// ...and opens again everywhere.
	for i, in := range ins {
		apptest.Eventually(t, fmt.Sprintf("registration open on instance %d", i), func() bool {
			r := in.Do(t, "POST", "/api/identity/users", map[string]string{"email": fmt.Sprintf("open%d-%s@example.com", i, run), "name": "Open", "password": "correct horse battery"})
			if r.Status == http.StatusCreated {
				registered++
			}
			return r.Status == http.StatusCreated
		})
	}
	settings := first.Expect(t, http.StatusOK, "GET", "/api/settings/customer", nil)
	if !strings.Contains(settings.Raw, `"value":"pro"`) {
		t.Fatalf("customer settings %s, want default_tier pro", settings.Raw)
	}
	// The tier change reached every customer context before the later
	// registration_open changes did (same topic, in order), so new
	// customers get it.
	for _, in := range ins {
		bob := register(in, "bob"+strings.TrimPrefix(in.URL, "http://127.0.0.1:"))
		if c := customerOf(last, bob.Str("id")); c["tier"] != "pro" {
			t.Fatalf("customer created after default_tier=pro has tier %v", c["tier"])
		}
	}

	// Bad input: 4xx JSON errors, nothing written.
	for _, in := range ins {
		if r := in.Expect(t, http.StatusBadRequest, "POST", "/api/identity/users", `{"email": `); r.ErrorCode() != "bad_request" {
			t.Fatalf("malformed body error %s", r.Raw)
		}
		in.Expect(t, http.StatusBadRequest, "POST", "/api/identity/users", `{"email":"x@example.com","name":"X","password":"correct horse battery","admin":true}`)
		in.Expect(t, http.StatusUnprocessableEntity, "POST", "/api/identity/users", map[string]string{"email": "eve-" + run + "@example.com", "name": "Eve", "password": "short"})
		in.Expect(t, http.StatusUnprocessableEntity, "POST", "/api/identity/users", map[string]string{"email": "not an email", "name": "Eve", "password": "correct horse battery"})
		in.Expect(t, http.StatusConflict, "POST", "/api/identity/users", map[string]string{"email": strings.ToUpper("alice-" + run + "@example.com"), "name": "Alice again", "password": "correct horse battery"})
		in.Expect(t, http.StatusRequestEntityTooLarge, "POST", "/api/identity/users", `{"name":"`+strings.Repeat("x", 2<<20)+`"}`)
		in.Expect(t, http.StatusNotFound, "GET", "/api/identity/users/no-such-user", nil)
		in.Expect(t, http.StatusNotFound, "GET", "/api/customers/no-such-customer", nil)
		in.Expect(t, http.StatusNotFound, "GET", "/api/settings/no-such-context", nil)
		in.Expect(t, http.StatusNotFound, "PUT", "/api/settings/identity/no_such_key", map[string]any{"value": true})
		in.Expect(t, http.StatusUnprocessableEntity, "PATCH", "/api/customers/"+aliceCustomer["id"].(string), map[string]string{"tier": "platinum"})
		in.Expect(t, http.StatusUnprocessableEntity, "POST", "/api/customers/"+aliceCustomer["id"].(string)+"/deals", map[string]any{"amount_cents": 0, "currency": "EUR"})
		in.Expect(t, http.StatusNotFound, "GET", "/api/nothing-here", nil)
		in.Expect(t, http.StatusMethodNotAllowed, "DELETE", "/api/identity/users", nil)
	}

	// Update and deals.
	patched := first.Expect(t, http.StatusOK, "PATCH", "/api/customers/"+aliceCustomer["id"].(string), map[string]string{"name": "Alice L."})
	if patched.Str("name") != "Alice L." {
		t.Fatalf("patched customer %s", patched.Raw)
	}
	last.Expect(t, http.StatusCreated, "POST", "/api/customers/"+aliceCustomer["id"].(string)+"/deals", map[string]any{"amount_cents": 125000, "currency": "EUR"})

	// Suspend: the customer becomes inactive, and takes no more deals.
	if r := first.Expect(t, http.StatusOK, "POST", "/api/identity/users/"+aliceID+"/suspend", nil); r.Str("status") != "suspended" {
		t.Fatalf("suspended user %s", r.Raw)
	}
	apptest.Eventually(t, "alice's customer inactive", func() bool {
		return last.Expect(t, http.StatusOK, "GET", "/api/customers/"+aliceCustomer["id"].(string), nil).Body["active"] == false
	})
	first.Expect(t, http.StatusConflict, "POST", "/api/customers/"+aliceCustomer["id"].(string)+"/deals", map[string]any{"amount_cents": 100, "currency": "EUR"})
	first.Expect(t, http.StatusConflict, "POST", "/api/identity/users/"+aliceID+"/suspend", nil)

	// Load spread over the instances: each user gets exactly one customer.
	var ids []string
	for i := range 20 {
		ids = append(ids, register(ins[i%len(ins)], fmt.Sprintf("user%02d", i)).Str("id"))
	}
	for _, id := range ids {
		customerOf(ins[0], id)
	}
	time.Sleep(time.Second) // let any duplicate delivery land before counting
	for _, id := range ids {
		list, _ := last.Expect(t, http.StatusOK, "GET", "/api/customers?user_id="+id, nil).Body["customers"].([]any)
		if len(list) != 1 {
			t.Fatalf("user %s has %d customers, want 1", id, len(list))
		}
	}
	all, _ := first.Expect(t, http.StatusOK, "GET", "/api/customers", nil).Body["customers"].([]any)
	total := len(all)
	if total != registered {
		t.Fatalf("%d customers for %d registered users", total, registered)
	}

	metrics := first.Admin().Expect(t, http.StatusOK, "GET", "/metrics", nil).Raw
	for _, want := range []string{"app_bus_handler_execution_time_seconds", `handler_name="customer.create-profile"`, "app_bus_publish_time_seconds", "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	t.Logf("%d instance(s): %d users registered, %d customers, every rejected request left nothing behind", len(ins), registered, total)
}
