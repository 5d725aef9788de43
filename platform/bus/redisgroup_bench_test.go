package bus

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/testenv"
)

// BenchmarkRawRedis is the ceiling the Redis adapter is compared with: the
// same events (the bus's envelope and payload, encoded by the bus's
// marshaller) written with pipelined XADDs by benchPublishers goroutines
// and consumed by one consumer of a group that reads XREADGROUP COUNT
// rawRedisBatch and acks each batch with one XACK pipelined with the next
// read. No Watermill, no router: only go-redis and Redis.
func BenchmarkRawRedis(b *testing.B) {
	const rawRedisBatch = 256
	addr := testenv.RequireRedis(b)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: addr, PoolSize: benchPublishers + 2})
	stream, group := benchTopicName("rawredis"), "bench.rawredis"
	b.Cleanup(func() { _ = client.Del(ctx, stream).Err(); _ = client.Close() })
	if err := client.XGroupCreateMkStream(ctx, stream, group, "$").Err(); err != nil {
		b.Fatal(err)
	}
	topic := NewTopic[benchPayload](stream, 1)
	msg, err := NewMessage(ctx, topic, "bench", benchPayload{ID: 1, Email: "user@example.com", Name: "Bench User"})
	if err != nil {
		b.Fatal(err)
	}
	values, err := safeRedisMarshaller{}.Marshal(stream, msg)
	if err != nil {
		b.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		var acks []string
		for got := 0; got < b.N; {
			pipe := client.Pipeline()
			if len(acks) > 0 {
				pipe.XAck(ctx, stream, group, acks...)
			}
			read := pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: group, Consumer: "raw", Streams: []string{stream, ">"},
				Count: rawRedisBatch, Block: 100 * time.Millisecond,
			})
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				done <- err
				return
			}
			acks = acks[:0]
			streams, _ := read.Result()
			for _, s := range streams {
				for _, m := range s.Messages {
					acks = append(acks, m.ID)
				}
				got += len(s.Messages)
			}
		}
		done <- client.XAck(ctx, stream, group, acks...).Err()
	}()

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	errs := make(chan error, benchPublishers)
	for range benchPublishers {
		go func() {
			for {
				from := int(next.Add(rawRedisBatch)) - rawRedisBatch
				if from >= b.N {
					errs <- nil
					return
				}
				pipe := client.Pipeline()
				for range min(rawRedisBatch, b.N-from) {
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values, MaxLen: DefaultConfig().Redis.MaxLen, Approx: true})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range benchPublishers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkRedisGroupDrain reads b.N entries already in a stream through a
// consumer group, acking each message as soon as it arrives: the read path
// alone, with nothing published meanwhile and no router. It compares
// watermill-redisstream's subscriber (COUNT 1, one XACK per entry) with
// redisGroupSubscriber at the default read_count.
func BenchmarkRedisGroupDrain(b *testing.B) {
	subscribers := map[string]func(cfg RedisConfig, group string) (message.Subscriber, error){
		"watermill-redisstream": func(cfg RedisConfig, group string) (message.Subscriber, error) {
			return redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client: redis.NewClient(&redis.Options{Addr: cfg.Addr}), Unmarshaller: safeRedisMarshaller{},
				Consumer: "bench", ConsumerGroup: group, BlockTime: cfg.BlockTime, DisableIndefiniteInitialBlock: true,
			}, watermill.NopLogger{})
		},
		"redisgroup": func(cfg RedisConfig, group string) (message.Subscriber, error) {
			return newRedisGroupSubscriber(newRedisGroupClient(cfg, 1, nil), group, []string{"bench"}, cfg, watermill.NopLogger{}), nil
		},
	}
	for _, name := range []string{"watermill-redisstream", "redisgroup"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			cfg := DefaultConfig().Redis
			cfg.Addr = testenv.RequireRedis(b)
			client := redis.NewClient(&redis.Options{Addr: cfg.Addr})
			stream, group := benchTopicName("drain"), "bench.drain"
			b.Cleanup(func() { _ = client.Del(ctx, stream).Err(); _ = client.Close() })
			if err := client.XGroupCreateMkStream(ctx, stream, group, "$").Err(); err != nil {
				b.Fatal(err)
			}
			msg, err := NewMessage(ctx, NewTopic[benchPayload](stream, 1), "bench", benchPayload{ID: 1, Email: "user@example.com", Name: "Bench User"})
			if err != nil {
				b.Fatal(err)
			}
			values, err := safeRedisMarshaller{}.Marshal(stream, msg)
			if err != nil {
				b.Fatal(err)
			}
			for from := 0; from < b.N; from += 1000 {
				pipe := client.Pipeline()
				for range min(1000, b.N-from) {
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			sub, err := subscribers[name](cfg, group)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = sub.Close() }()
			b.ResetTimer()
			start := time.Now()
			msgs, err := sub.Subscribe(ctx, stream)
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				(<-msgs).Ack()
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
