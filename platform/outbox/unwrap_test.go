package outbox

import (
	"maps"
	"slices"
	"testing"

	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
)

// captured keeps what a publisher was given.
type captured struct{ msgs []*message.Message }

func (c *captured) Publish(_ string, msgs ...*message.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func (c *captured) Close() error { return nil }

// TestUnwrapReadsWhatTheForwarderWrites wraps messages as outbox rows hold
// them (components/forwarder's publisher, encoding/json) and checks that
// unwrap gives back what encoding/json decodes from them, for payloads and
// metadata that need escaping or are not valid UTF-8.
func TestUnwrapReadsWhatTheForwarderWrites(t *testing.T) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	cases := []struct {
		name     string
		payload  []byte
		metadata message.Metadata
	}{
		{"an event", []byte(`{"user_id":"u-1","email":"a@example.com"}`), message.Metadata{"event_id": "01a2", "event_type": "identity.user.registered"}},
		{"no metadata", []byte(`{}`), nil},
		{"no payload", nil, message.Metadata{}},
		{"escapes", []byte("line\nbreak \"quoted\" <b> & \u2028"), message.Metadata{
			"poison_reason": "panic: boom\n\tgoroutine 1 [running]:\n\t\"main.go\"",
			"emoji":         "🙂 ünïcødé",
			"control":       "\x00\x01\x1f\x7f",
			"html":          "<a href='x'>&amp;</a>",
		}},
		{"not UTF-8", []byte{0xff, 0xfe, 'x'}, message.Metadata{"bad": "\xff\xfe", "half": "\xe2\x82"}},
		{"every byte", binary, message.Metadata{"every byte": string(binary)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := &captured{}
			msg := message.NewMessage("01a2264b-0500-7d79-96f1-260982a86a7e", c.payload)
			msg.Metadata = c.metadata
			if err := forwarder.NewPublisher(out, forwarder.PublisherConfig{ForwarderTopic: "outbox"}).Publish("identity.user.registered", msg); err != nil {
				t.Fatal(err)
			}
			row := out.msgs[0]

			var want envelope
			if err := (forwarder.DefaultMarshaler{}).Unmarshal(row.Payload, &want); err != nil {
				t.Fatal(err)
			}
			topic, got, err := unwrap(row)
			if err != nil {
				t.Fatal(err)
			}
			if topic != want.DestinationTopic || got.UUID != want.UUID || !slices.Equal(got.Payload, message.Payload(want.Payload)) {
				t.Errorf("unwrap gave topic %q, uuid %q, payload %q; encoding/json %q, %q, %q", topic, got.UUID, got.Payload, want.DestinationTopic, want.UUID, want.Payload)
			}
			if want.Metadata == nil {
				want.Metadata = map[string]string{}
			}
			if !maps.Equal(got.Metadata, message.Metadata(want.Metadata)) {
				t.Errorf("unwrap gave metadata %q; encoding/json %q", got.Metadata, want.Metadata)
			}
		})
	}
}

// TestUnwrapReadsOtherRowsAsEncodingJSONDoes feeds rows the forwarder never writes
// but encoding/json reads: unwrap reads them as encoding/json does.
func TestUnwrapReadsOtherRowsAsEncodingJSONDoes(t *testing.T) {
	for name, row := range map[string]string{
		"a name twice":       `{"destination_topic":"a.b.c","destination_topic":"x.y.z","uuid":"u","payload":"eyJ9","metadata":null}`,
		"a name in capitals": `{"Destination_Topic":"x.y.z","UUID":"u","Payload":"eyJ9","Metadata":{"k":"v"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			topic, msg, err := unwrap(message.NewMessage("row", []byte(row)))
			if err != nil {
				t.Fatal(err)
			}
			if topic != "x.y.z" || msg.UUID != "u" || string(msg.Payload) != `{"}` {
				t.Errorf("unwrap gave topic %q, uuid %q, payload %q; want x.y.z, u, {\"}", topic, msg.UUID, msg.Payload)
			}
		})
	}
	if _, _, err := unwrap(message.NewMessage("row", []byte(`{"uuid":"u"`))); err == nil {
		t.Error("unwrap read a truncated row without an error")
	}
}
