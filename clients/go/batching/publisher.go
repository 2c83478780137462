// Package batching publishes events to the Sluice gateway in batches, like a Kafka
// producer: events are buffered until MaxBatchEvents are waiting (or the next one would
// take the request over MaxBatchBytes) or Linger passed since the first of them, then sent
// with one PublishBatch call. Each event gets its own result.
//
//	p := batching.New(sluicev1.NewEventGatewayClient(conn), token, batching.Options{})
//	defer p.Close()
//	done, err := p.Publish(ctx, env) // err: ctx ended while the buffer was full, or ErrClosed
//	r := <-done                      // r.Delivery, or r.Err (a *batching.Error)
//
// Memory is bounded: at most MaxInFlightBatches calls are out at once; when they are and
// the buffer is full, Publish blocks until a call answers (or ctx ends).
package batching

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sluicev1 "sluice.dev/sluice/gen/sluice/v1"
)

// Options tunes a Publisher; a zero field takes its default.
type Options struct {
	MaxBatchEvents     int           // events per PublishBatch call at most (500)
	MaxBatchBytes      int           // request size at most (1000000): under the gateway's --max-message-bytes
	Linger             time.Duration // how long the first buffered event waits for others (5ms)
	MaxInFlightBatches int           // PublishBatch calls out at once at most (4)
	Timeout            time.Duration // deadline of each call (30s)
}

// Result is one event's outcome: a Delivery, or Err.
type Result struct {
	Delivery *sluicev1.Delivery
	Err      error
}

// Error is why one event was not published: the gateway's per-event error, or the status
// of the failed call that carried it. status.Code(err) works on it.
type Error struct {
	Code    codes.Code
	Message string
	Field   string // the offending field path for InvalidArgument, else ""
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%v: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%v: %s", e.Code, e.Message)
}

// GRPCStatus lets status.Code and status.FromError read an *Error.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("batching: publisher closed")

// One buffered event, or (flushed != nil) a Flush marker.
type pending struct {
	env     *sluicev1.Envelope
	size    int // in a PublishBatchRequest
	done    chan Result
	flushed chan struct{}
}

// Publisher batches events; its methods are safe for concurrent use.
type Publisher struct {
	client   sluicev1.EventGatewayClient
	token    string
	opts     Options
	events   chan pending  // the buffer: Publish blocks while it is full
	slots    chan struct{} // one per call in flight
	inFlight sync.WaitGroup
	mu       sync.RWMutex // Publish holds it shared; Close exclusively, to set closed
	closed   bool
	stopped  chan struct{} // closed when the batching goroutine ends
}

// New starts a Publisher that sends with client, authenticated with token.
func New(client sluicev1.EventGatewayClient, token string, opts Options) *Publisher {
	if opts.MaxBatchEvents <= 0 {
		opts.MaxBatchEvents = 500
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 1_000_000
	}
	if opts.Linger <= 0 {
		opts.Linger = 5 * time.Millisecond
	}
	if opts.MaxInFlightBatches <= 0 {
		opts.MaxInFlightBatches = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	p := &Publisher{client: client, token: token, opts: opts,
		events: make(chan pending, opts.MaxBatchEvents), slots: make(chan struct{}, opts.MaxInFlightBatches),
		stopped: make(chan struct{})}
	go p.run()
	return p
}

// Publish buffers env and returns a channel that receives its Result once. It blocks
// while the buffer is full; the error is ctx's if ctx ends first, or ErrClosed.
func (p *Publisher) Publish(ctx context.Context, env *sluicev1.Envelope) (<-chan Result, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrClosed
	}
	done := make(chan Result, 1)
	select {
	case p.events <- pending{env: env, size: proto.Size(env) + 6, done: done}: // + field tag and length
		return done, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Flush sends what is buffered now and waits until every event published before it has
// its result (or ctx ends).
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	return p.flush(ctx)
}

func (p *Publisher) flush(ctx context.Context) error {
	flushed := make(chan struct{})
	select {
	case p.events <- pending{flushed: flushed}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes and stops the Publisher; Publish returns ErrClosed afterwards.
func (p *Publisher) Close() error {
	p.mu.Lock() // waits for Publish calls under way
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.flush(context.Background())
	close(p.events) // nobody sends any more: ends run
	<-p.stopped
	return err
}

// run assembles batches: it is the only reader of p.events.
func (p *Publisher) run() {
	defer close(p.stopped)
	var batch []pending
	var bytes int
	var linger <-chan time.Time
	send := func() {
		if len(batch) > 0 {
			p.slots <- struct{}{} // blocks while MaxInFlightBatches calls are out
			p.inFlight.Add(1)
			go p.send(batch)
		}
		batch, bytes, linger = nil, 0, nil
	}
	for {
		select {
		case e, ok := <-p.events:
			switch {
			case !ok:
				return
			case e.flushed != nil:
				send()
				p.inFlight.Wait()
				close(e.flushed)
			default:
				if bytes+e.size > p.opts.MaxBatchBytes {
					send()
				}
				bytes += e.size
				if batch = append(batch, e); len(batch) == 1 {
					linger = time.After(p.opts.Linger)
				}
				if len(batch) >= p.opts.MaxBatchEvents {
					send()
				}
			}
		case <-linger:
			send()
		}
	}
}

// send makes one PublishBatch call and hands each event its result.
func (p *Publisher) send(batch []pending) {
	defer func() { <-p.slots; p.inFlight.Done() }()
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+p.token)
	req := &sluicev1.PublishBatchRequest{Envelopes: make([]*sluicev1.Envelope, len(batch))}
	for i, e := range batch {
		req.Envelopes[i] = e.env
	}
	resp, err := p.client.PublishBatch(ctx, req)
	results := resp.GetResults()
	if err == nil && len(results) != len(batch) {
		err = status.Errorf(codes.Internal, "gateway answered %d results for %d events", len(results), len(batch))
	}
	for i, e := range batch {
		if err != nil { // the whole call failed: so did each of its events
			st := status.Convert(err)
			e.done <- Result{Err: &Error{Code: st.Code(), Message: st.Message()}}
		} else if pe := results[i].GetError(); pe != nil {
			e.done <- Result{Err: &Error{Code: codes.Code(pe.GetCode()), Message: pe.GetMessage(), Field: pe.GetField()}}
		} else {
			e.done <- Result{Delivery: results[i].GetAck()}
		}
	}
}
