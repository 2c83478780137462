// Command publish sends one binary sluice.v1.Envelope to the Sluice gateway and prints
// the delivery as one JSON line.
//
//	publish --target HOST:PORT --token TOKEN --vector PATH.binpb
//	        [--stream | --batch N [--batch-size M] [--invalid I]]
//
// --batch N publishes the vector N times, each with a fresh id, through a
// batching.Publisher (batches of at most M events) and prints one JSON line per event, in
// order, with its "index"; --invalid I gives event I the id "not-a-uuid", which the
// gateway refuses.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"sluice.dev/sluice/batching"
	sluicev1 "sluice.dev/sluice/gen/sluice/v1"
)

// The line printed on success.
type delivered struct {
	Lang      string `json:"lang"`
	EventID   string `json:"eventId"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Duplicate bool   `json:"duplicate"`
}

// The line printed on failure.
type failed struct {
	Lang  string `json:"lang"`
	Error struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// One line of --batch output.
type batchLine struct {
	Lang  string `json:"lang"`
	Index int    `json:"index"`
	*delivery
	Error *batchError `json:"error,omitempty"`
}

type delivery struct {
	EventID   string `json:"eventId"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Duplicate bool   `json:"duplicate"`
}

type batchError struct {
	Code    int32  `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

// newUUID returns a random (version 4) UUID, lower-case.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// publishBatch publishes n copies of env with fresh ids and returns one line per event;
// event `invalid` gets an id the gateway refuses.
func publishBatch(ctx context.Context, client sluicev1.EventGatewayClient, token string, env *sluicev1.Envelope,
	n, batchSize, invalid int) ([]batchLine, error) {
	p := batching.New(client, token, batching.Options{MaxBatchEvents: batchSize})
	defer p.Close()
	results := make([]<-chan batching.Result, n)
	for i := range n {
		e := proto.Clone(env).(*sluicev1.Envelope)
		if e.Id = newUUID(); i == invalid {
			e.Id = "not-a-uuid"
		}
		var err error
		if results[i], err = p.Publish(ctx, e); err != nil {
			return nil, err
		}
	}
	lines := make([]batchLine, n)
	for i, done := range results {
		r := <-done
		lines[i] = batchLine{Lang: "go", Index: i}
		var e *batching.Error
		if errors.As(r.Err, &e) {
			lines[i].Error = &batchError{Code: int32(e.Code), Message: e.Message, Field: e.Field}
		} else {
			d := r.Delivery
			lines[i].delivery = &delivery{EventID: d.GetEventId(), Topic: d.GetTopic(), Partition: d.GetPartition(),
				Offset: d.GetOffset(), Duplicate: d.GetDuplicate()}
		}
	}
	return lines, nil
}

func publish(ctx context.Context, client sluicev1.EventGatewayClient, env *sluicev1.Envelope, stream bool) (*sluicev1.Delivery, error) {
	if !stream {
		resp, err := client.Publish(ctx, &sluicev1.PublishRequest{Envelope: env})
		return resp.GetDelivery(), err
	}
	// One stream, one event: the sequence number pairs each response with its request.
	s, err := client.PublishStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Send(&sluicev1.PublishStreamRequest{Sequence: 1, Envelope: env}); err != nil {
		_, err = s.Recv() // the stream's status says why
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	resp, err := s.Recv()
	if err != nil {
		return nil, err
	}
	if e := resp.GetError(); e != nil {
		return nil, status.Error(codes.Code(e.GetCode()), e.GetMessage())
	}
	return resp.GetAck(), nil
}

// run publishes as the flags say and returns the JSON lines to print.
func run() ([]any, error) {
	target := flag.String("target", "", "gateway HOST:PORT (plaintext gRPC)")
	token := flag.String("token", "", "bearer token")
	vector := flag.String("vector", "", "file holding a binary sluice.v1.Envelope")
	stream := flag.Bool("stream", false, "use PublishStream instead of Publish")
	batch := flag.Int("batch", 0, "publish N copies with fresh ids in batches")
	batchSize := flag.Int("batch-size", 500, "events per PublishBatch call at most")
	invalid := flag.Int("invalid", -1, "with --batch: make event I invalid")
	flag.Parse()
	if *target == "" || *token == "" || *vector == "" {
		flag.Usage()
		os.Exit(2)
	}

	data, err := os.ReadFile(*vector)
	if err != nil {
		return nil, err
	}
	env := &sluicev1.Envelope{}
	if err := proto.Unmarshal(data, env); err != nil {
		return nil, fmt.Errorf("%s: %w", *vector, err)
	}

	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := sluicev1.NewEventGatewayClient(conn)
	if *batch > 0 {
		lines, err := publishBatch(ctx, client, *token, env, *batch, *batchSize, *invalid)
		out := make([]any, len(lines))
		for i := range lines {
			out[i] = lines[i]
		}
		return out, err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*token)
	d, err := publish(ctx, client, env, *stream)
	if err != nil {
		return nil, err
	}
	return []any{delivered{Lang: "go", EventID: d.GetEventId(), Topic: d.GetTopic(),
		Partition: d.GetPartition(), Offset: d.GetOffset(), Duplicate: d.GetDuplicate()}}, nil
}

func main() {
	lines, err := run()
	if err != nil {
		// A gRPC status, or UNKNOWN for anything else (e.g. an unreadable vector).
		st, _ := status.FromError(err)
		var out failed
		out.Lang, out.Error.Code, out.Error.Message = "go", int32(st.Code()), st.Message()
		line, _ := json.Marshal(out)
		fmt.Println(string(line))
		os.Exit(1)
	}
	exit := 0
	for _, l := range lines {
		if b, ok := l.(batchLine); ok && b.Error != nil {
			exit = 1
		}
		line, _ := json.Marshal(l)
		fmt.Println(string(line))
	}
	os.Exit(exit)
}
