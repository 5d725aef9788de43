package bus

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// goChannelAdapter keeps events in process: every handler gets every event
// published while it is subscribed; nothing survives a restart.
type goChannelAdapter struct{ ch *gochannel.GoChannel }

func newGoChannel(cfg Config, logger watermill.LoggerAdapter) *goChannelAdapter {
	return &goChannelAdapter{ch: gochannel.NewGoChannel(gochannel.Config{
		OutputChannelBuffer: cfg.GoChannel.OutputBuffer,
	}, logger)}
}

func (a *goChannelAdapter) publisher() message.Publisher { return a.ch }

func (a *goChannelAdapter) subscriber(Handler) (message.Subscriber, bool, error) {
	return a.ch, false, nil
}

func (a *goChannelAdapter) check(context.Context) error { return nil }

func (a *goChannelAdapter) close() error { return a.ch.Close() }
