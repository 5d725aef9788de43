package main

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/example/monolith/platform/bus"
)

// event is every row's payload: the publish time, then padding up to the
// row's payload size. encoding/json writes it as {"t":…,"pad":"xx…"}, the
// bytes appendBody writes for the rows that skip the bus's encoding, so
// every row carries the same payload.
type event struct {
	T   int64  `json:"t"`
	Pad string `json:"pad"`
}

// envelopeBytes is {"t":<19 digits>,"pad":""}: the payload without padding.
const envelopeBytes = len(`{"t":1234567890123456789,"pad":""}`)

var pads sync.Map // payload size -> padding

func pad(size int) string {
	if p, ok := pads.Load(size); ok {
		return p.(string)
	}
	p := strings.Repeat("x", max(size-envelopeBytes, 0))
	pads.Store(size, p)
	return p
}

func newEvent(size int, sent int64) event { return event{T: sent, Pad: pad(size)} }

// publishEvents publishes events first to first+k-1 of size bytes through
// p, as bus.Publish encodes them, stamped with sent.
func publishEvents(ctx context.Context, p bus.Publisher, topic bus.Topic[event], size, first, k int, sent int64) error {
	for i := first; i < first+k; i++ {
		if err := bus.Publish(ctx, p, topic, aggregateOf(i), newEvent(size, sent)); err != nil {
			return err
		}
	}
	return nil
}

// appendBody appends the JSON of newEvent(size, sent).
func appendBody(buf []byte, size int, sent int64) []byte {
	buf = append(buf, `{"t":`...)
	buf = strconv.AppendInt(buf, sent, 10)
	buf = append(buf, `,"pad":"`...)
	buf = append(buf, pad(size)...)
	return append(buf, `"}`...)
}

// sentOf reads the publish time from a payload without decoding it all.
func sentOf[B ~[]byte | ~string](body B) int64 {
	const prefix = `{"t":`
	if len(body) < len(prefix) || string(body[:len(prefix)]) != prefix {
		return 0
	}
	var n int64
	for i := len(prefix); i < min(len(body), len(prefix)+20); i++ {
		c := body[i]
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// aggregates spreads events over ids, so the handler pools that keep one
// aggregate's events in order can run events side by side.
var aggregates = func() []string {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "agg-" + strconv.Itoa(i)
	}
	return ids
}()

func aggregateOf(i int) string { return aggregates[i%len(aggregates)] }
