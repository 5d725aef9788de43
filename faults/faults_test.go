// Package faults runs the real binary, two instances at a time, on RabbitMQ
// and on Redis Streams with PostgreSQL, injects broker and process faults
// while users register and win deals over HTTP, and counts what went in and
// what came out: no registered user may end without its customer (lost) or
// with its effect applied twice (duplicated), and no won deal may be counted
// on its customer less or more than once. Creating a customer is absorbed
// by a unique constraint when applied twice; counting a deal
// (customer.count-won-deal adds one) is made exactly-once by the
// processed-events record alone.
//
// These tests stop brokers and kill connections, so they run on their own,
// after the rest of the suite (see the Makefile's test target).
package faults_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/topics"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// users is how many users the load scenarios register.
const users = 2000

var brokers = []struct {
	name string
	new  func(*testing.T) *apptest.Broker
}{{"amqp", apptest.AMQP}, {"redisstream", apptest.Redis}, {"nats", apptest.NATS}}

func TestFaults(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Run("ConnectionsDropped", func(t *testing.T) { connectionsDropped(t, b.new(t)) })
			t.Run("BrokerRestarted", func(t *testing.T) { brokerRestarted(t, b.new(t)) })
			t.Run("ConsumerKilled", func(t *testing.T) { consumerKilled(t, b.new(t)) })
			t.Run("GracefulRestartUnderLoad", func(t *testing.T) { gracefulRestart(t, b.new(t)) })
			t.Run("MalformedFlood", func(t *testing.T) { malformedFlood(t, b.new(t)) })
			t.Run("DuplicateDelivery", func(t *testing.T) { duplicateDelivery(t, b.new(t)) })
		})
	}
}

func connectionsDropped(t *testing.T, b *apptest.Broker) {
	const drops = 5
	d := deploy(t, b, 2)
	var faultEnd time.Time
	d.load(users, func(progress func() int) {
		// One drop at every sixth of the load, each once the clients have
		// reconnected from the one before and made progress.
		for i := 1; i <= drops; i++ {
			waitProgress(t, progress, users*i/(drops+1))
			b.Drop(t)
		}
		faultEnd = time.Now()
	})
	d.report(fmt.Sprintf("connections dropped %d times during the load", drops), faultEnd, 0)
}

func brokerRestarted(t *testing.T, b *apptest.Broker) {
	d := deploy(t, b, 2)
	var faultEnd time.Time
	d.load(users, func(progress func() int) {
		waitProgress(t, progress, users/3)
		down := b.Restart(t)
		faultEnd = time.Now()
		t.Logf("broker down for %s", down.Round(time.Millisecond))
	})
	d.report("broker restarted", faultEnd, 0)
}

func consumerKilled(t *testing.T, b *apptest.Broker) {
	d := deploy(t, b, 2)
	var faultEnd time.Time
	d.load(users, func(progress func() int) {
		waitProgress(t, progress, users/3)
		d.remove(d.instances()[1]).Kill(t)
		faultEnd = time.Now()
	})
	d.report("one of two consumers SIGKILLed", faultEnd, 0)
}

func gracefulRestart(t *testing.T, b *apptest.Broker) {
	d := deploy(t, b, 2)
	var faultEnd time.Time
	d.load(users, func(progress func() int) {
		waitProgress(t, progress, users/3)
		d.remove(d.instances()[1]).Stop(t) // fails the test unless it exits 0
		d.add(d.start())
		faultEnd = time.Now()
	})
	d.report("SIGTERM under load, then restart", faultEnd, 0)
}

func malformedFlood(t *testing.T, b *apptest.Broker) {
	const garbage, valid = 1000, 500
	d := deploy(t, b, 2)
	var notReady atomic.Int64
	stop := make(chan struct{})
	var probes sync.WaitGroup
	for _, in := range d.instances() {
		probes.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if r, err := in.Try("GET", "/readyz", nil); err != nil || r.Status != http.StatusOK {
					notReady.Add(1)
				}
			}
		})
	}
	var faultEnd time.Time
	d.load(valid, func(func() int) {
		for i := range garbage {
			b.Inject(t, topics.UserRegistered.Name(), messageWith(fmt.Sprintf("garbage %d: not an event", i)), true)
		}
		faultEnd = time.Now()
	})
	apptest.Eventually(t, fmt.Sprintf("%d malformed messages in the poison store", garbage), func() bool {
		return d.count(`SELECT COUNT(*) FROM poison_messages WHERE topic = 'identity.user.registered' AND handler = 'customer.create-profile'`) == garbage
	})
	close(stop)
	probes.Wait()
	if n := notReady.Load(); n > 0 {
		t.Fatalf("instances were not ready %d times during the flood", n)
	}
	d.report(fmt.Sprintf("%d malformed messages injected among valid events", garbage), faultEnd, garbage)
}

func duplicateDelivery(t *testing.T, b *apptest.Broker) {
	d := deploy(t, b, 2)
	userID := "dup-" + apptest.RandomID()
	msg, err := bus.NewMessage(context.Background(), topics.UserRegistered, userID,
		topics.UserRegisteredV1{UserID: userID, Email: userID + "@example.com", Name: "Twice"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.Inject(t, topics.UserRegistered.Name(), msg, false)
	b.Inject(t, topics.UserRegistered.Name(), msg, false) // same event id
	apptest.Eventually(t, "the injected user's customer", func() bool {
		return d.count(`SELECT COUNT(*) FROM customers WHERE user_id = $1`, userID) > 0
	})
	recovered := time.Since(start)
	time.Sleep(2 * time.Second) // room for the second delivery to land
	customers := d.count(`SELECT COUNT(*) FROM customers WHERE user_id = $1`, userID)
	marks := d.count(`SELECT COUNT(*) FROM processed_events WHERE handler = 'customer.create-profile' AND event_id = $1`, msg.UUID)
	created := d.count(`SELECT COUNT(*) FROM watermill_outbox WHERE payload->>'destination_topic' = 'customer.customer.created'
		AND convert_from(decode(payload->>'payload', 'base64'), 'UTF8')::json->>'user_id' = $1`, userID)
	t.Logf("| same event delivered twice | %s | 2 | 1 | 0 | %d | %s |", b.Adapter, customers-1+created-1, recovered.Round(time.Millisecond))
	if customers != 1 || marks != 1 || created != 1 {
		t.Fatalf("one event delivered twice: %d customers, %d processed marks, %d customer.created events; want 1 each", customers, marks, created)
	}

	// The same for a won deal, whose count only the processed-events record
	// keeps from growing twice.
	var customerID string
	if err := d.db.QueryRow(`SELECT id FROM customers WHERE user_id = $1`, userID).Scan(&customerID); err != nil {
		t.Fatal(err)
	}
	won, err := bus.NewMessage(context.Background(), topics.DealWon, "dup-deal",
		topics.DealWonV1{DealID: "dup-deal", CustomerID: customerID, AmountCents: 100, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	b.Inject(t, topics.DealWon.Name(), won, false)
	b.Inject(t, topics.DealWon.Name(), won, false) // same event id
	apptest.Eventually(t, "the injected deal counted", func() bool {
		return d.count(`SELECT deals_won FROM customers WHERE id = $1`, customerID) > 0
	})
	recovered = time.Since(start)
	time.Sleep(2 * time.Second) // room for the second delivery to land
	counted := d.count(`SELECT deals_won FROM customers WHERE id = $1`, customerID)
	marks = d.count(`SELECT COUNT(*) FROM processed_events WHERE handler = 'customer.count-won-deal' AND event_id = $1`, won.UUID)
	t.Logf("| same event delivered twice: won deal counted | %s | 2 | 1 | 0 | %d | %s |", b.Adapter, counted-1, recovered.Round(time.Millisecond))
	if counted != 1 || marks != 1 {
		t.Fatalf("one customer.deal.won delivered twice: deals_won %d, %d processed marks; want 1 each", counted, marks)
	}
}

// deployment is a fresh database and broker namespace with running instances.
type deployment struct {
	t      *testing.T
	broker *apptest.Broker
	env    []string
	db     *sql.DB
	run    string

	mu    sync.Mutex
	alive []*apptest.Instance

	// Won deals posted during the load: answered 201 (recorded), or
	// otherwise (no answer, an error: recorded or not). None is retried, as
	// a retry of a recorded deal would record a second one.
	dealsAccepted, dealsUnknown atomic.Int64
}

func deploy(t *testing.T, b *apptest.Broker, n int) *deployment {
	dsn := dbtest.Config(t, db.DriverPostgres).DSN
	conn, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	d := &deployment{t: t, broker: b, db: conn, run: apptest.RandomID(), env: append([]string{
		"APP_DATABASE_DSN=" + dsn,
		"APP_CONTEXTS_IDENTITY_BCRYPT_COST=4", // the load is about events, not hashing
		"APP_LOG_LEVEL=warn",
		// Every handler runs four events at a time, so faults hit concurrent
		// deliveries; the relay forwards in batches (outbox.batch_size).
		"APP_BUS_CONCURRENCY=4",
		// A dead consumer's pending Redis entries are claimed after 3s.
		"APP_BUS_REDISSTREAM_MAX_IDLE_TIME=3s", "APP_BUS_REDISSTREAM_CLAIM_INTERVAL=500ms",
	}, b.Env...)}
	for range n {
		d.add(d.start())
	}
	return d
}

func (d *deployment) start() *apptest.Instance { return apptest.Start(d.t, d.broker.Config, d.env...) }

func (d *deployment) add(in *apptest.Instance) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.alive = append(d.alive, in)
}

// remove takes in out of the load's rotation and returns it.
func (d *deployment) remove(in *apptest.Instance) *apptest.Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.alive = slices.DeleteFunc(d.alive, func(x *apptest.Instance) bool { return x == in })
	return in
}

func (d *deployment) instances() []*apptest.Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.alive)
}

// clients is how many HTTP clients register users at once: enough to keep
// both instances busy, few enough that the load outlasts several faults.
const clients = 6

// dealClients is how many HTTP clients win deals for existing customers
// beside them; minDeals is how many deals they post at least.
const (
	dealClients = 2
	minDeals    = 200
)

// load registers n users over HTTP from concurrent clients spread over the live
// instances, and wins deals for the customers created so far, while fault
// runs with a view of the registrations' progress. A registration that
// fails in transport is retried on another instance; 409 means an earlier
// attempt got through.
func (d *deployment) load(n int, fault func(progress func() int)) {
	var done atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	registered := make(chan struct{})
	var deals sync.WaitGroup
	for range dealClients {
		deals.Go(func() { d.winDeals(registered) })
	}
	defer deals.Wait()
	defer close(registered)
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				body := map[string]string{"email": fmt.Sprintf("u%05d-%s@example.com", i, d.run), "name": "Load", "password": "correct horse battery"}
				for attempt := 0; ; attempt++ {
					alive := d.instances()
					r, err := alive[(i+attempt)%len(alive)].Try("POST", "/api/identity/users", body)
					if err == nil && (r.Status == http.StatusCreated || r.Status == http.StatusConflict) {
						break
					}
					if attempt > 100 {
						d.t.Errorf("user %d not registered after 100 attempts: %v %v", i, err, r.Raw)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				done.Add(1)
			}
		})
	}
	fault(func() int { return int(done.Load()) })
	wg.Wait()
}

// winDeals posts won deals for random existing customers to the live
// instances until the registrations are over and minDeals were accepted
// (or a minute after the registrations, whatever was accepted).
func (d *deployment) winDeals(registered <-chan struct{}) {
	var over time.Time
	for i := 0; ; i++ {
		select {
		case <-registered:
			if over.IsZero() {
				over = time.Now()
			}
			if d.dealsAccepted.Load() >= minDeals || time.Since(over) > time.Minute {
				return
			}
		default:
		}
		var customerID string
		err := d.db.QueryRow(`SELECT id FROM customers ORDER BY random() LIMIT 1`).Scan(&customerID)
		if errors.Is(err, sql.ErrNoRows) {
			time.Sleep(20 * time.Millisecond) // no customer yet
			continue
		}
		if err != nil {
			d.t.Errorf("pick a customer: %v", err)
			return
		}
		alive := d.instances()
		r, err := alive[i%len(alive)].Try("POST", "/api/customers/"+customerID+"/deals", map[string]any{"amount_cents": 100, "currency": "EUR"})
		switch {
		case err == nil && r.Status == http.StatusCreated:
			d.dealsAccepted.Add(1)
		case err == nil:
			d.t.Logf("win a deal for customer %s: %d %s", customerID, r.Status, r.Raw)
			fallthrough
		default:
			d.dealsUnknown.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitProgress waits until n users are registered; a load that stalls for
// two minutes fails the test.
func waitProgress(t *testing.T, progress func() int, n int) {
	last, since := progress(), time.Now()
	for p := last; p < n; p = progress() {
		if p != last {
			last, since = p, time.Now()
		}
		if time.Since(since) > 2*time.Minute {
			t.Errorf("load stalled at %d of %d users", p, n)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *deployment) count(query string, args ...any) int {
	d.t.Helper()
	var n int
	if err := d.db.QueryRow(query, args...).Scan(&n); err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// report waits until every registered user has its customer, then checks
// and logs the counts as a row of docs/reliability.md's table.
func (d *deployment) report(scenario string, faultEnd time.Time, poisoned int) {
	t := d.t
	in := func() int { return d.count(`SELECT COUNT(*) FROM users`) }
	handled := func() int {
		return d.count(`SELECT COUNT(DISTINCT user_id) FROM customers c JOIN users u ON u.id = c.user_id`)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for handled() < in() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	recovered := time.Since(faultEnd)
	time.Sleep(time.Second) // let late duplicates land before counting them
	users, got := in(), handled()
	dupCustomers := d.count(`SELECT COUNT(*) - COUNT(DISTINCT user_id) FROM customers`)
	dupEvents := d.count(`SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM watermill_outbox
		WHERE payload->>'destination_topic' = 'customer.customer.created'
		GROUP BY convert_from(decode(payload->>'payload', 'base64'), 'UTF8')::json->>'user_id') per_user`)
	t.Logf("| %s | %s | %d | %d | %d | %d | %s |", scenario, d.broker.Adapter, users+poisoned, got+poisoned, users-got, dupCustomers+dupEvents, recovered.Round(100*time.Millisecond))
	if got != users || dupCustomers+dupEvents != 0 {
		t.Fatalf("%d users registered, %d with their customer, %d duplicated effects", users, got, dupCustomers+dupEvents)
	}
	d.reportDeals(scenario, faultEnd)
}

// reportDeals waits until every recorded deal is counted on its customer,
// then checks and logs, as another row of the table, the deals recorded
// (one customer.deal.won each) against the customers' deals_won: a deal
// not counted is lost, a deal counted twice duplicated.
func (d *deployment) reportDeals(scenario string, faultEnd time.Time) {
	t := d.t
	in := func() int { return d.count(`SELECT COUNT(*) FROM deals`) }
	counted := func() int { return d.count(`SELECT COALESCE(SUM(deals_won), 0) FROM customers`) }
	deadline := time.Now().Add(3 * time.Minute)
	for counted() < in() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	recovered := time.Since(faultEnd)
	time.Sleep(time.Second) // let late duplicates land before counting them
	const perCustomer = `FROM customers c LEFT JOIN (SELECT customer_id, COUNT(*) AS n FROM deals GROUP BY customer_id) d ON d.customer_id = c.id`
	deals := in()
	lost := d.count(`SELECT COALESCE(SUM(GREATEST(COALESCE(d.n, 0) - c.deals_won, 0)), 0) ` + perCustomer)
	duplicated := d.count(`SELECT COALESCE(SUM(GREATEST(c.deals_won - COALESCE(d.n, 0), 0)), 0) ` + perCustomer)
	accepted, unknown := int(d.dealsAccepted.Load()), int(d.dealsUnknown.Load())
	t.Logf("| %s: won deals counted | %s | %d | %d | %d | %d | %s |", scenario, d.broker.Adapter, deals, deals-lost, lost, duplicated, recovered.Round(100*time.Millisecond))
	if deals == 0 || lost != 0 || duplicated != 0 {
		t.Fatalf("%d deals recorded, %d not counted on their customer, %d counted twice", deals, lost, duplicated)
	}
	if deals < accepted || deals > accepted+unknown {
		t.Fatalf("%d deals recorded, but %d were accepted and %d answered otherwise or not at all", deals, accepted, unknown)
	}
}

// messageWith is a message whose payload is body.
func messageWith(body string) *message.Message {
	return message.NewMessage(watermill.NewUUID(), []byte(body))
}
