package bus

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// goChannelAdapter keeps events in process: every handler gets every event
// published while it is subscribed; nothing survives a restart. Each handler
// reads through a keyedPool of its concurrency.
type goChannelAdapter struct{ ch *gochannel.GoChannel }

func newGoChannel(cfg Config, logger watermill.LoggerAdapter) *goChannelAdapter {
	return &goChannelAdapter{ch: gochannel.NewGoChannel(gochannel.Config{
		OutputChannelBuffer: cfg.GoChannel.OutputBuffer,
		// Publish then hands messages over one by one, in order; without it
		// each message races to the handler on a goroutine of its own. It
		// waits only for the handler's pool to queue the message, not for
		// the handler.
		BlockPublishUntilSubscriberAck: true,
	}, logger)}
}

func (a *goChannelAdapter) publisher() message.Publisher { return a.ch }

func (a *goChannelAdapter) subscriber(h Handler) (message.Subscriber, bool, error) {
	return keyedPool{sub: a.ch, n: h.concurrency}, false, nil
}

func (a *goChannelAdapter) check(context.Context) error { return nil }

func (a *goChannelAdapter) close() error { return a.ch.Close() }
