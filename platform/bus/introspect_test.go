package bus_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
)

func TestTopicsListsEveryDeclaration(t *testing.T) {
	again := bus.NewTopic[greeting]("test.greeting.sent", 1) // as greeted: listed once
	other := bus.NewTopic[string]("test.registry.listed", 2)
	var got []bus.TopicInfo
	for _, ti := range bus.Topics() {
		if ti.Name == again.Name() || ti.Name == other.Name() {
			got = append(got, ti)
		}
	}
	want := []bus.TopicInfo{
		{Name: "test.greeting.sent", Version: 1, Payload: reflect.TypeFor[greeting]()},
		{Name: "test.registry.listed", Version: 2, Payload: reflect.TypeFor[string]()},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Topics() has %v, want %v", got, want)
	}
	if info := other.Info(); info.Context() != "test" || info.Aggregate() != "registry" {
		t.Fatalf("Info() = %+v: context %q, aggregate %q", info, info.Context(), info.Aggregate())
	}
}

// TestTopicEnvelopeIsWhatPublishSets checks that the envelope a topic fixes,
// as tools read it, is the one its published events carry.
func TestTopicEnvelopeIsWhatPublishSets(t *testing.T) {
	msg, err := bus.NewMessage(context.Background(), greeted, "g1", greeting{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	fixed := greeted.Info().Envelope().Metadata()
	for _, key := range []string{bus.MetaEventType, bus.MetaAggregateType, bus.MetaSchemaVersion, bus.MetaSource} {
		if fixed[key] == "" || fixed[key] != msg.Metadata[key] {
			t.Errorf("%s: the topic's envelope says %q, a published event %q", key, fixed[key], msg.Metadata[key])
		}
	}
	keys := bus.Envelope{}.Metadata()
	if len(keys) != len(msg.Metadata) {
		t.Errorf("an empty envelope sets %d metadata keys, a published event carries %d", len(keys), len(msg.Metadata))
	}
}

func TestHandlerGetters(t *testing.T) {
	noop := func(context.Context, bus.Event[greeting]) error { return nil }
	h := bus.NewHandler("test.own-timeout", greeted, noop, bus.Timeout(time.Second))
	if h.Timeout() != time.Second || h.ConsumesPoison() || h.Concurrency() != 0 { // 0: bus.concurrency decides
		t.Errorf("handler with its own timeout: Timeout %s, ConsumesPoison %t, Concurrency %d", h.Timeout(), h.ConsumesPoison(), h.Concurrency())
	}
	if h := bus.NewHandler("test.default-timeout", greeted, noop); h.Timeout() != 0 {
		t.Errorf("handler without a timeout: Timeout %s, want 0 (bus.handler_timeout)", h.Timeout())
	}
	p := bus.NewPoisonHandler("test.poison", func(context.Context, bus.PoisonedMessage) error { return nil })
	if !p.ConsumesPoison() {
		t.Error("a poison handler does not say it consumes the poison topic")
	}
}
