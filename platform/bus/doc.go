// Package bus is the event bus every bounded context talks through.
//
// A context declares nothing here: topics live in platform/topics as typed
// values ([Topic]), events are sent with [Publish] and received by handlers
// built with [NewHandler] ([Broadcast] for every instance, [Concurrency] and
// [Ordered] for how many events at once; contexts use
// outbox.NewHandler, which wraps it with exactly-once effects). The bus runs those
// handlers on a Watermill router whose middleware gives each of them
// correlation, poison-queue routing, retry with exponential backoff, panic
// recovery, a timeout and Prometheus metrics, identically on every adapter
// (gochannel, AMQP, Redis Streams) chosen by [Config].
//
// See docs/bus.md for the semantics each adapter guarantees.
package bus
