package catalog

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"gopkg.in/yaml.v3"

	"github.com/example/monolith/platform/bus"
)

// The AsyncAPI document, in the order its fields are written.
type (
	asyncAPIDoc struct {
		AsyncAPI           string               `yaml:"asyncapi"`
		Info               asyncAPIInfo         `yaml:"info"`
		DefaultContentType string               `yaml:"defaultContentType"`
		Servers            map[string]server    `yaml:"servers"`
		Channels           map[string]channel   `yaml:"channels"`
		Operations         map[string]operation `yaml:"operations"`
		Components         components           `yaml:"components"`
	}
	asyncAPIInfo struct {
		Title       string `yaml:"title"`
		Version     string `yaml:"version"`
		Description string `yaml:"description"`
	}
	server struct {
		Host            string `yaml:"host"`
		Protocol        string `yaml:"protocol"`
		ProtocolVersion string `yaml:"protocolVersion,omitempty"`
		Pathname        string `yaml:"pathname,omitempty"`
		Description     string `yaml:"description"`
	}
	channel struct {
		Address     string          `yaml:"address"`
		Description string          `yaml:"description"`
		Messages    map[string]ref  `yaml:"messages"`
		Bindings    channelBindings `yaml:"bindings"`
	}
	ref struct {
		Ref string `yaml:"$ref"`
	}
	channelBindings struct {
		AMQP amqpChannel `yaml:"amqp"`
	}
	amqpChannel struct {
		Is             string       `yaml:"is"`
		Exchange       amqpExchange `yaml:"exchange"`
		BindingVersion string       `yaml:"bindingVersion"`
	}
	amqpExchange struct {
		Name       string `yaml:"name"`
		Type       string `yaml:"type"`
		Durable    bool   `yaml:"durable"`
		AutoDelete bool   `yaml:"autoDelete"`
		VHost      string `yaml:"vhost"`
	}
	operation struct {
		Action      string            `yaml:"action"`
		Channel     ref               `yaml:"channel"`
		Messages    []ref             `yaml:"messages"`
		Summary     string            `yaml:"summary"`
		Description string            `yaml:"description"`
		Bindings    operationBindings `yaml:"bindings"`
	}
	operationBindings struct {
		AMQP amqpOperation `yaml:"amqp"`
	}
	amqpOperation struct {
		DeliveryMode   int    `yaml:"deliveryMode,omitempty"`
		Ack            bool   `yaml:"ack,omitempty"`
		BindingVersion string `yaml:"bindingVersion"`
	}
	components struct {
		Messages map[string]asyncAPIMessage `yaml:"messages"`
	}
	asyncAPIMessage struct {
		Name    string         `yaml:"name"`
		Title   string         `yaml:"title"`
		Summary string         `yaml:"summary"`
		Headers map[string]any `yaml:"headers"`
		Payload map[string]any `yaml:"payload"`
	}
)

// asyncAPIVersion is the version of the document itself; each message
// carries its payload's schema version in its schema_version header.
const asyncAPIVersion = "1.0.0"

const amqpBindingVersion = "0.3.0"

// AsyncAPI is c as an AsyncAPI 3.0.0 document in YAML: a server per bus
// adapter, a channel per topic (and the poison topic), a send operation
// per topic for its publisher, a receive operation per handler.
func AsyncAPI(c Catalog) ([]byte, error) {
	amqpURI, err := amqp091.ParseURI(c.bus.AMQP.URL)
	if err != nil {
		return nil, fmt.Errorf("catalog: bus.amqp.url: %w", err)
	}
	d := docBuilder{c: c, vhost: amqpURI.Vhost, doc: asyncAPIDoc{
		AsyncAPI: "3.0.0",
		Info: asyncAPIInfo{
			Title:   path.Base(modulePath) + " events",
			Version: asyncAPIVersion,
			Description: "Every event the bounded contexts of " + modulePath + " exchange, generated from what the binary registers " +
				"(`app catalog --format asyncapi`). Payloads are JSON; the envelope travels as message metadata " +
				"(AMQP headers, Redis stream fields). See docs/bus.md.",
		},
		DefaultContentType: "application/json",
		Servers:            c.servers(amqpURI),
		Channels:           map[string]channel{},
		Operations:         map[string]operation{},
		Components:         components{Messages: map[string]asyncAPIMessage{}},
	}}
	for _, t := range c.Topics {
		d.addTopic(t.Name, asyncAPIMessage{
			Name: t.PayloadType, Title: t.Name,
			Summary: fmt.Sprintf("Published by %s about a %s, schema version %d.", t.Context, t.Aggregate, t.Version),
			Headers: t.Headers, Payload: t.Payload,
		}, "Published by "+t.Context,
			t.Context+" publishes "+t.Name+".",
			"Through the outbox: written in the transaction of the change it reports, forwarded to the bus once committed.")
	}
	d.addTopic(c.PoisonTopic, asyncAPIMessage{
		Name: "bus.PoisonedMessage", Title: c.PoisonTopic,
		Summary: "A message a handler gave up on: its original payload and metadata, and why.",
		Headers: poisonHeadersSchema(),
		Payload: map[string]any{"description": "The original message's payload, unchanged (an event's JSON, or whatever could not be decoded)."},
	}, "bus.poison_topic: every event a handler gives up on, after its retries or at once for a permanent error",
		"The bus poisons what a handler gives up on.",
		"Published by the poison-queue middleware around every handler.")
	for _, h := range c.Handlers {
		if !h.Pattern {
			d.addReceive(h, h.Name, h.Topic)
			continue
		}
		// An operation receives from one channel: one per matched topic.
		for _, t := range c.Topics {
			if bus.Match(h.Topic, t.Name) {
				d.addReceive(h, h.Name+"."+t.Name, t.Name)
			}
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(d.doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func writeAsyncAPI(w io.Writer, c Catalog) error {
	doc, err := AsyncAPI(c)
	if err != nil {
		return err
	}
	_, err = w.Write(doc)
	return err
}

// servers describes each adapter, from its section of the bus
// configuration; never with a password.
func (c Catalog) servers(amqpURI amqp091.URI) map[string]server {
	return map[string]server{
		bus.AdapterGoChannel: {
			Host: "in-process", Protocol: "gochannel",
			Description: "bus.adapter gochannel, the default: Watermill's Go channels inside the one process. " +
				"No network is involved: host and protocol say so, they are no address. Nothing survives a restart.",
		},
		bus.AdapterAMQP: {
			Host: fmt.Sprintf("%s:%d", amqpURI.Host, amqpURI.Port), Protocol: "amqp", ProtocolVersion: "0.9.1", Pathname: amqpURI.Vhost,
			Description: fmt.Sprintf("bus.adapter amqp: RabbitMQ. One %s topic exchange %q, routing key = topic name, "+
				"one queue per handler named after it (per instance for broadcast handlers).", durability(c.bus.AMQP.Durable), c.bus.AMQP.Exchange),
		},
		bus.AdapterRedisStream: {
			Host: c.bus.Redis.Addr, Protocol: "redis", Pathname: "/" + strconv.Itoa(c.bus.Redis.DB),
			Description: "bus.adapter redisstream: Redis Streams. One stream per topic named after it, " +
				"one consumer group per handler named after it (broadcast handlers read without a group).",
		},
		bus.AdapterNATS: {
			Host: natsHost(c.bus.NATS.URL), Protocol: "nats",
			Description: fmt.Sprintf("bus.adapter nats: NATS JetStream. One stream %q holding every topic on the subject %s.<topic>, "+
				"one durable consumer per handler named after it with dots as underscores (an ephemeral one per instance for broadcast handlers).",
				c.bus.NATS.Stream, c.bus.NATS.SubjectPrefix),
		},
	}
}

// natsHost is the host and port of a NATS URL, without credentials.
func natsHost(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

func durability(durable bool) string {
	if durable {
		return "durable"
	}
	return "transient"
}

// docBuilder fills an AsyncAPI document from a catalog.
type docBuilder struct {
	c     Catalog
	vhost string
	doc   asyncAPIDoc
}

// addTopic adds the channel of topic with msg, its only message, and the
// operation sending it.
func (d *docBuilder) addTopic(topic string, msg asyncAPIMessage, publishedBy, summary, description string) {
	d.doc.Components.Messages[topic] = msg
	d.doc.Channels[topic] = channel{
		Address:     topic,
		Description: fmt.Sprintf("%s; handled by %s.", publishedBy, orNothing(handlerNames(d.c.ConsumersOf(topic)))),
		Messages:    map[string]ref{topic: {"#/components/messages/" + topic}},
		Bindings: channelBindings{AMQP: amqpChannel{
			// On RabbitMQ the topic is a routing key on the one exchange.
			Is: "routingKey",
			Exchange: amqpExchange{
				Name: d.c.bus.AMQP.Exchange, Type: "topic", Durable: d.c.bus.AMQP.Durable, VHost: d.vhost,
			},
			BindingVersion: amqpBindingVersion,
		}},
	}
	mode := 1 // transient
	if d.c.bus.AMQP.Durable {
		mode = 2 // persistent
	}
	d.doc.Operations["send."+topic] = operation{
		Action: "send", Channel: ref{"#/channels/" + topic}, Messages: []ref{messageRef(topic)},
		Summary: summary, Description: description,
		Bindings: operationBindings{AMQP: amqpOperation{DeliveryMode: mode, BindingVersion: amqpBindingVersion}},
	}
}

// addReceive adds the operation id of handler h, receiving topic.
func (d *docBuilder) addReceive(h Handler, id, topic string) {
	delivery := fmt.Sprintf("Instances share its events: AMQP queue %s, Redis consumer group %s.", h.Name, d.c.bus.Redis.GroupPrefix+h.Name)
	if h.Broadcast {
		delivery = fmt.Sprintf("Broadcast: every instance gets every event, through its own exclusive auto-delete AMQP queue %s.<instance> "+
			"and a Redis read without a group.", h.Name)
	}
	giveUp := "then the event is poisoned"
	if h.Topic == d.c.PoisonTopic {
		giveUp = "then the message is redelivered, never poisoned again"
	}
	summary := fmt.Sprintf("%s handles %s.", h.Context, topic)
	if h.Pattern {
		summary = fmt.Sprintf("%s handles %s, which its pattern %s matches.", h.Context, topic, h.Topic)
	}
	d.doc.Operations[id] = operation{
		Action: "receive", Channel: ref{"#/channels/" + topic}, Messages: []ref{messageRef(topic)},
		Summary: summary,
		Description: fmt.Sprintf("%s Each attempt times out after %s; a failure is retried (%s), %s. On a broker it runs %d event at a time per instance.",
			delivery, h.Timeout, h.Retry, giveUp, h.Concurrency),
		Bindings: operationBindings{AMQP: amqpOperation{Ack: true, BindingVersion: amqpBindingVersion}},
	}
}

// messageRef points at the one message of topic's channel, as operations must.
func messageRef(topic string) ref { return ref{"#/channels/" + topic + "/messages/" + topic} }

func orNothing(s string) string {
	if s == "" {
		return "nothing yet"
	}
	return s
}
