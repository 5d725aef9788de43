package bus

import (
	"context"
	"slices"

	"github.com/redis/go-redis/v9"
)

// execPipeline runs pipe, after which each command carries its own outcome.
// go-redis (v9.12) returns a refused dial from Exec without setting it on
// the commands, which then read as successes with empty replies: an XADD
// would count as stored, an XACK as sent. When Exec fails and no command
// holds an error, none was sent, so each gets Exec's error. (When one was
// sent and its reply lost, go-redis already set the error on it and on
// those after it; the commands before it did succeed.)
func execPipeline(ctx context.Context, pipe redis.Pipeliner) {
	cmds, err := pipe.Exec(ctx)
	if err == nil || slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Err() != nil }) {
		return
	}
	for _, c := range cmds {
		c.SetErr(err)
	}
}
