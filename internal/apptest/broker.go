package apptest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/testenv"
)

// Broker is a broker namespace of a test's own, and what a test can do
// behind the application's back.
type Broker struct {
	// Adapter is the bus.adapter it serves.
	Adapter string
	// Config is the configuration file the app runs with.
	Config string
	// Env points the app at this namespace.
	Env []string
	// Inject writes msg straight into the broker on topic, as another
	// program would: a Watermill-encoded message, or garbage when raw.
	Inject func(t *testing.T, topic string, msg *message.Message, raw bool)
	// Drop makes the broker close every client connection.
	Drop func(t *testing.T)
	// Restart stops the broker and starts it again; it returns how long
	// the broker was down.
	Restart func(t *testing.T) time.Duration
}

// AMQP is a virtual host of the local RabbitMQ, deleted when the test ends.
// Restart stops and starts the RabbitMQ application (every vhost).
func AMQP(t *testing.T) *Broker {
	url := strings.TrimSuffix(testenv.RequireAMQP(t), "/")
	vhost := "test-" + RandomID()
	rabbitmqctl(t, "add_vhost", vhost)
	t.Cleanup(func() { rabbitmqctl(t, "delete_vhost", vhost) })
	rabbitmqctl(t, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
	vhostURL := url + "/" + vhost
	return &Broker{
		Adapter: "amqp",
		Config:  "configs/amqp.yaml",
		Env:     []string{"APP_BUS_AMQP_URL=" + vhostURL},
		Inject: func(t *testing.T, topic string, msg *message.Message, raw bool) {
			conn, err := amqp091.Dial(vhostURL)
			if err != nil {
				t.Fatalf("dial amqp: %v", err)
			}
			defer func() { _ = conn.Close() }()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			p := amqp091.Publishing{Body: msg.Payload, DeliveryMode: amqp091.Persistent}
			if !raw {
				if p, err = (amqp.DefaultMarshaler{}).Marshal(msg); err != nil {
					t.Fatal(err)
				}
			}
			if err := ch.PublishWithContext(context.Background(), "app.events", topic, false, false, p); err != nil {
				t.Fatalf("inject: %v", err)
			}
		},
		Drop: func(t *testing.T) { rabbitmqctl(t, "close_all_connections", "fault test") },
		Restart: func(t *testing.T) time.Duration {
			start := time.Now()
			// Never leave the shared broker stopped, whatever happens next.
			t.Cleanup(func() { _ = testenv.RabbitMQCtl("start_app").Run() })
			rabbitmqctl(t, "stop_app")
			rabbitmqctl(t, "start_app")
			rabbitmqctl(t, "await_startup")
			return time.Since(start)
		},
	}
}

// Redis is a Redis server of the test's own, on a free port, with an
// append-only file fsynced on every write, so that a restart keeps every
// acknowledged entry (the machine's shared Redis keeps nothing on disk).
func Redis(t *testing.T) *Broker {
	testenv.RequireRedis(t) // the server binary comes with the service
	dir := t.TempDir()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startRedis := func() {
		out, err := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--daemonize", "yes",
			"--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
			"--pidfile", dir+"/redis.pid", "--logfile", dir+"/redis.log").CombinedOutput()
		if err != nil {
			t.Fatalf("start redis-server: %v\n%s", err, out)
		}
		waitPort(t, addr)
	}
	startRedis()
	client := redis.NewClient(&redis.Options{Addr: addr})
	shutdown := func() { _ = client.Do(context.Background(), "SHUTDOWN").Err() }
	t.Cleanup(func() { shutdown(); _ = client.Close() })
	return &Broker{
		Adapter: "redisstream",
		Config:  "configs/redisstream.yaml",
		Env:     []string{"APP_BUS_REDISSTREAM_ADDR=" + addr},
		Inject: func(t *testing.T, topic string, msg *message.Message, raw bool) {
			values := map[string]any{"junk": []byte(msg.Payload)}
			if !raw {
				var err error
				if values, err = (redisstream.DefaultMarshallerUnmarshaller{}).Marshal(topic, msg); err != nil {
					t.Fatal(err)
				}
			}
			if err := client.XAdd(context.Background(), &redis.XAddArgs{Stream: topic, Values: values}).Err(); err != nil {
				t.Fatalf("inject: %v", err)
			}
		},
		Drop: func(t *testing.T) {
			n, err := client.Do(context.Background(), "CLIENT", "KILL", "TYPE", "normal").Int()
			if err != nil || n == 0 {
				t.Fatalf("client kill: %d connections closed, %v", n, err)
			}
		},
		Restart: func(*testing.T) time.Duration {
			start := time.Now()
			shutdown()
			for { // until the old server is gone
				c, err := net.Dial("tcp", addr)
				if err != nil {
					break
				}
				_ = c.Close()
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // down for a moment, as a real restart is
			startRedis()
			return time.Since(start)
		},
	}
}

// freePort is a TCP port of 127.0.0.1 that nothing listens on now, for a
// server of the test's own.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	if out, err := testenv.RabbitMQCtl(args...).CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after 30s", addr)
		}
	}
}

// NATS is a nats-server of the test's own, with JetStream on a store in a
// temporary directory, on a free port, reached through a proxy: NATS has
// no command that closes its clients' connections, so Drop closes them at
// the proxy. Restart stops the server (SIGTERM) and starts it again on the
// same store.
func NATS(t *testing.T) *Broker {
	testenv.RequireNATS(t) // the server binary comes with the service
	server := testenv.RequireCommand(t, "nats-server")
	dir := t.TempDir()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var cmd *exec.Cmd
	start := func() {
		cmd = exec.Command(server, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start nats-server: %v", err)
		}
		waitPort(t, addr)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	start()
	t.Cleanup(func() { stop() })
	proxy := testenv.NewProxy(t, addr)
	return &Broker{
		Adapter: "nats",
		Config:  "configs/nats.yaml",
		// A killed instance's deliveries come back after ack_wait: 10s
		// instead of a minute keeps the run short.
		Env: []string{"APP_BUS_NATS_URL=nats://" + proxy.Addr, "APP_BUS_NATS_ACK_WAIT=10s"},
		Inject: func(t *testing.T, topic string, msg *message.Message, raw bool) {
			conn, err := nats.Connect("nats://" + addr)
			if err != nil {
				t.Fatalf("connect nats: %v", err)
			}
			defer conn.Close()
			js, err := conn.JetStream()
			if err != nil {
				t.Fatal(err)
			}
			out := nats.NewMsg("events." + topic)
			out.Data = msg.Payload
			if !raw {
				// As watermill-nats writes a message: its UUID and
				// metadata as headers.
				if out, err = (&wmnats.NATSMarshaler{}).Marshal("events."+topic, msg); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := js.PublishMsg(out); err != nil {
				t.Fatalf("inject: %v", err)
			}
		},
		Drop: func(t *testing.T) {
			if n := proxy.Drop(); n == 0 {
				t.Fatal("no connection to drop")
			}
		},
		Restart: func(*testing.T) time.Duration {
			began := time.Now()
			stop()
			time.Sleep(500 * time.Millisecond) // down for a moment, as a real restart is
			start()
			return time.Since(began)
		},
	}
}
