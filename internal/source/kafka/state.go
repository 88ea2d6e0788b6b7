package kafka

import (
	"cmp"
	"context"
	"slices"
)

// partState is what the consumer holds of one assigned partition. Every
// field is guarded by Consumer.mu.
type partState struct {
	topic     string
	partition int32
	// ctx ends when the partition is dropped (or the consumer stops);
	// deliveries of its batches run under it.
	ctx    context.Context
	cancel context.CancelFunc

	// msgs are the messages read and not yet in the done prefix, in
	// offset order.
	msgs []*message
	// pending are the items waiting for a batch, in (offset, record)
	// order; items of a failed batch come back here.
	pending []item
	// inflight counts batches being delivered; idle is closed when it
	// falls to zero once the partition is stopping.
	inflight int
	stopping bool
	idle     chan struct{}
	gone     bool

	// done is the offset after the contiguous prefix of settled messages
	// (-1: none yet), epoch its leader epoch; doneItems counts the items of
	// those messages not yet committed, commitItems those of the commit in
	// progress.
	done        int64
	epoch       int32
	doneItems   int
	commitItems int
	// committed is the group's committed offset as last known (-1:
	// unknown); hw the partition's high watermark from the last fetch.
	committed int64
	hw        int64
}

func newPartState(parent context.Context, topic string, partition int32) *partState {
	ctx, cancel := context.WithCancel(parent)
	return &partState{topic: topic, partition: partition, ctx: ctx, cancel: cancel, done: -1, committed: -1, hw: -1}
}

// add appends a message and its items; it returns the bytes of the items
// waiting for delivery.
func (p *partState) add(m *message, items []item) int {
	m.items, m.left = len(items), len(items)
	p.msgs = append(p.msgs, m)
	bytes := 0
	for i := range items {
		items[i].msg = m
		bytes += len(items[i].data)
	}
	p.pending = append(p.pending, items...)
	p.advance()
	return bytes
}

// advance moves the done prefix past the settled messages at the head.
func (p *partState) advance() {
	i := 0
	for ; i < len(p.msgs) && p.msgs[i].left == 0; i++ {
		m := p.msgs[i]
		p.done, p.epoch = m.offset+1, m.epoch
		p.doneItems += m.items
		p.msgs[i] = nil
	}
	if i > 0 {
		p.msgs = p.msgs[i:]
	}
}

// takeBatch removes the next batch from pending: at most maxBytes (but at
// least one item) and maxItems (0: unbounded), cut at a message boundary
// when the batch holds more than one message, so that a revoked partition
// leaves few half-delivered messages (which would be delivered again).
func (p *partState) takeBatch(maxBytes, maxItems int) []item {
	n, size := 0, 0
	for n < len(p.pending) {
		s := p.pending[n].size()
		if n > 0 && (size+s > maxBytes || (maxItems > 0 && n >= maxItems)) {
			break
		}
		size += s
		n++
	}
	if n > 0 && n < len(p.pending) && p.pending[n].msg == p.pending[n-1].msg {
		// The cut splits a message: move it to the last boundary inside
		// the batch, if there is one.
		for b := n - 1; b > 0; b-- {
			if p.pending[b].msg != p.pending[b-1].msg {
				n = b
				break
			}
		}
	}
	batch := slices.Clone(p.pending[:n])
	clear(p.pending[:n])
	p.pending = p.pending[n:]
	return batch
}

// settle marks items delivered (or dead-lettered) and puts the others back
// in pending, in order, ahead of what was never sent.
func (p *partState) settle(items []item, settled []bool) {
	var back []item
	for i := range items {
		if settled[i] {
			items[i].msg.left--
		} else {
			back = append(back, items[i])
		}
	}
	if len(back) > 0 {
		p.pending = append(back, p.pending...)
		slices.SortStableFunc(p.pending, func(a, b item) int {
			if c := cmp.Compare(a.msg.offset, b.msg.offset); c != 0 {
				return c
			}
			return cmp.Compare(a.n, b.n)
		})
	}
	p.advance()
}

// uncommitted counts the items of this partition not committed yet.
func (p *partState) uncommitted() int {
	n := p.doneItems + p.commitItems
	for _, m := range p.msgs {
		n += m.items
	}
	return n
}

// lag is the messages between the committed offset and the high
// watermark, as far as known.
func (p *partState) lag() int64 {
	if p.hw < 0 || p.committed < 0 {
		return 0
	}
	return max(p.hw-p.committed, 0)
}
