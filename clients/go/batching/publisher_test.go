package batching

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sluicev1 "sluice.dev/sluice/gen/sluice/v1"
)

// fakeGateway answers PublishBatch: an error for the id "bad" (field "id"), an ack at the
// next offset for any other event, or `fail` for the whole call when set. It records each
// call's size and the most calls it served at once.
type fakeGateway struct {
	sluicev1.UnimplementedEventGatewayServer
	fail error

	mu         sync.Mutex
	offset     int64
	sizes      []int
	serving    int
	maxServing int
}

func (f *fakeGateway) PublishBatch(ctx context.Context, req *sluicev1.PublishBatchRequest) (*sluicev1.PublishBatchResponse, error) {
	f.mu.Lock()
	f.sizes = append(f.sizes, len(req.GetEnvelopes()))
	f.serving++
	f.maxServing = max(f.maxServing, f.serving)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.serving--; f.mu.Unlock() }()
	if f.fail != nil {
		return nil, f.fail
	}
	resp := &sluicev1.PublishBatchResponse{}
	for _, env := range req.GetEnvelopes() {
		if env.GetId() == "bad" {
			resp.Results = append(resp.Results, &sluicev1.PublishResult{Result: &sluicev1.PublishResult_Error{
				Error: &sluicev1.PublishError{Code: int32(codes.InvalidArgument), Message: "must be a UUID", Field: "id"}}})
			continue
		}
		f.mu.Lock()
		d := &sluicev1.Delivery{EventId: env.GetId(), Topic: "fake", Offset: f.offset}
		f.offset++
		f.mu.Unlock()
		resp.Results = append(resp.Results, &sluicev1.PublishResult{Result: &sluicev1.PublishResult_Ack{Ack: d}})
	}
	return resp, nil
}

func start(t *testing.T, f *fakeGateway) sluicev1.EventGatewayClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	sluicev1.RegisterEventGatewayServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sluicev1.NewEventGatewayClient(conn)
}

// publishAll publishes one event per id and returns their results, in order.
func publishAll(t *testing.T, p *Publisher, ids []string) []Result {
	t.Helper()
	var chans []<-chan Result
	for _, id := range ids {
		done, err := p.Publish(context.Background(), &sluicev1.Envelope{Id: id, Type: "data.refreshed"})
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, done)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	results := make([]Result, len(chans))
	for i, c := range chans {
		results[i] = <-c
	}
	return results
}

func TestEachEventGetsItsOwnResult(t *testing.T) {
	f := &fakeGateway{}
	p := New(start(t, f), "token", Options{MaxBatchEvents: 4, MaxInFlightBatches: 2})
	defer p.Close()
	ids := []string{"a", "b", "bad", "c", "d", "e", "f", "g", "h", "i"}
	for i, r := range publishAll(t, p, ids) {
		if ids[i] == "bad" {
			var e *Error
			if r.Delivery != nil || !errors.As(r.Err, &e) || e.Code != codes.InvalidArgument || e.Field != "id" {
				t.Errorf("event %d: %+v, want InvalidArgument on field id", i, r)
			}
			if status.Code(r.Err) != codes.InvalidArgument {
				t.Errorf("status.Code(%v) = %v", r.Err, status.Code(r.Err))
			}
		} else if r.Err != nil || r.Delivery.GetEventId() != ids[i] {
			t.Errorf("event %d: %+v, want the ack of %q", i, r, ids[i])
		}
	}
	total := 0
	for _, n := range f.sizes {
		if n > 4 {
			t.Errorf("a call of %d events, want at most 4", n)
		}
		total += n
	}
	if total != len(ids) || f.maxServing > 2 {
		t.Errorf("sent %d events in calls %v, %d at once; want %d, at most 2 at once", total, f.sizes, f.maxServing, len(ids))
	}
}

func TestBatchesStayWithinMaxBatchBytes(t *testing.T) {
	f := &fakeGateway{}
	size := proto.Size(&sluicev1.Envelope{Id: "a", Type: "data.refreshed"}) + 6
	p := New(start(t, f), "token", Options{MaxBatchBytes: 3 * size})
	defer p.Close()
	publishAll(t, p, []string{"a", "b", "c", "d", "e", "f", "g"})
	for _, n := range f.sizes {
		if n > 3 {
			t.Errorf("calls %v: want at most 3 events (bytes) each", f.sizes)
		}
	}
}

func TestFailedCallFailsEveryEventOfIt(t *testing.T) {
	f := &fakeGateway{fail: status.Error(codes.Unavailable, "broker down")}
	p := New(start(t, f), "token", Options{})
	defer p.Close()
	for i, r := range publishAll(t, p, []string{"a", "b", "c"}) {
		if status.Code(r.Err) != codes.Unavailable || r.Delivery != nil {
			t.Errorf("event %d: %+v, want Unavailable", i, r)
		}
	}
}

func TestPublishAfterCloseFails(t *testing.T) {
	p := New(start(t, &fakeGateway{}), "token", Options{})
	p.Close()
	if _, err := p.Publish(context.Background(), &sluicev1.Envelope{}); err != ErrClosed {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
}
