package bus

// The rules find the publish functions by their Topic parameter.

func Publish[T any](ctx context.Context, p Publisher, topic Topic[T], aggregateID string, payload T) error

func NewMessage[T any](ctx context.Context, topic Topic[T], aggregateID string, payload T) (*message.Message, error)
