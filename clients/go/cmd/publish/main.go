// Command publish sends one binary sluice.v1.Envelope to the Sluice gateway and prints
// the delivery as one JSON line.
//
//	publish --target HOST:PORT --token TOKEN --vector PATH.binpb [--stream]
package main

import (
	"context"
	"encoding/json"
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

func run() (*sluicev1.Delivery, error) {
	target := flag.String("target", "", "gateway HOST:PORT (plaintext gRPC)")
	token := flag.String("token", "", "bearer token")
	vector := flag.String("vector", "", "file holding a binary sluice.v1.Envelope")
	stream := flag.Bool("stream", false, "use PublishStream instead of Publish")
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
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*token)
	return publish(ctx, sluicev1.NewEventGatewayClient(conn), env, *stream)
}

func main() {
	d, err := run()
	if err != nil {
		// A gRPC status, or UNKNOWN for anything else (e.g. an unreadable vector).
		st, _ := status.FromError(err)
		var out failed
		out.Lang, out.Error.Code, out.Error.Message = "go", int32(st.Code()), st.Message()
		line, _ := json.Marshal(out)
		fmt.Println(string(line))
		os.Exit(1)
	}
	line, _ := json.Marshal(delivered{Lang: "go", EventID: d.GetEventId(), Topic: d.GetTopic(),
		Partition: d.GetPartition(), Offset: d.GetOffset(), Duplicate: d.GetDuplicate()})
	fmt.Println(string(line))
}
