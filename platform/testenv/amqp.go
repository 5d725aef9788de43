package testenv

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// AMQPQueue declares on RabbitMQ at url a durable topic exchange and a
// durable queue of the same name, with args, bound to it by each routing
// key, so the queue holds what the exchange took in the order it did. It
// returns a channel to read the queue with, and the queue's name; both
// are deleted when the test ends.
func AMQPQueue(t testing.TB, url, exchange string, routingKeys []string, args amqp091.Table) (*amqp091.Channel, string) {
	t.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	queue := exchange
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	for _, key := range routingKeys {
		if err := ch.QueueBind(queue, key, exchange, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(queue, false, false, false)
		_ = ch.ExchangeDelete(exchange, false, false)
	})
	return ch, queue
}
