//! PUBACKs in the order their publications arrived.
//!
//! MQTT 5 (§4.6) requires a client to acknowledge QoS 1 publications in the order it received
//! them, and brokers hold it to that: rumqttd (the embedded broker) drops a connection whose
//! PUBACK is not for its oldest unacknowledged publication, and the broker then delivers
//! everything unacknowledged again. The runtime finishes messages in any order (a dead letter
//! before an earlier message's output, two sinks at different speeds), so a finished message
//! waits here until every earlier one of its connection is finished too.
//!
//! A message whose [`Ack`](wasmflow_transport::Ack) is dropped without being called (the run
//! is stopping, or its dead letter could not be published) holds every later PUBACK of its
//! connection: the broker keeps them all and delivers them again on the next connection, which
//! is what it does for the message itself. Until then the broker's in-flight window fills and
//! it sends no more on this connection: a message that can never be finished stops intake
//! rather than being acknowledged unfinished.

use std::collections::VecDeque;

/// Where one received publication stands in its connection's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u64,
    seq: u64,
}

/// The received, not yet acknowledged publications of the current connection, oldest first.
#[derive(Debug)]
pub(crate) struct InOrder<A> {
    /// Counts connections: a ticket of an earlier one is void (its packet ids mean nothing now).
    generation: u64,
    /// Sequence number of `pending[0]`.
    base: u64,
    /// `Some` once the runtime has finished that publication.
    pending: VecDeque<Option<A>>,
}

impl<A> Default for InOrder<A> {
    fn default() -> Self {
        Self {
            generation: 0,
            base: 0,
            pending: VecDeque::new(),
        }
    }
}

impl<A> InOrder<A> {
    /// A QoS 1 publication arrived on the current connection.
    pub(crate) fn received(&mut self) -> Ticket {
        self.pending.push_back(None);
        Ticket {
            generation: self.generation,
            seq: self.base + self.pending.len() as u64 - 1,
        }
    }

    /// The runtime finished the publication of `ticket`, whose PUBACK is `ack`: hands `send`
    /// every PUBACK that may go now, oldest first (none while an earlier one is unfinished).
    pub(crate) fn finished(&mut self, ticket: Ticket, ack: A, mut send: impl FnMut(A)) {
        if ticket.generation != self.generation {
            return;
        }
        let Some(slot) = ticket
            .seq
            .checked_sub(self.base)
            .and_then(|i| self.pending.get_mut(i as usize))
        else {
            return;
        };
        *slot = Some(ack);
        while let Some(Some(_)) = self.pending.front() {
            if let Some(Some(a)) = self.pending.pop_front() {
                self.base += 1;
                send(a);
            }
        }
    }

    /// A new connection: the broker delivers the unacknowledged ones again under new tickets.
    pub(crate) fn reconnected(&mut self) {
        self.generation += 1;
        self.base += self.pending.len() as u64;
        self.pending.clear();
    }

    /// The connection the tickets handed out now belong to.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish(o: &mut InOrder<u16>, t: Ticket, pkid: u16) -> Vec<u16> {
        let mut sent = Vec::new();
        o.finished(t, pkid, |a| sent.push(a));
        sent
    }

    #[test]
    fn a_later_message_waits_for_the_earlier_ones() {
        let mut o = InOrder::default();
        let [a, b, c] = [o.received(), o.received(), o.received()];
        assert_eq!(finish(&mut o, c, 3), Vec::<u16>::new());
        assert_eq!(finish(&mut o, b, 2), Vec::<u16>::new());
        assert_eq!(finish(&mut o, a, 1), vec![1, 2, 3]);
        let d = o.received();
        assert_eq!(finish(&mut o, d, 4), vec![4]);
    }

    #[test]
    fn tickets_of_an_earlier_connection_are_void() {
        let mut o = InOrder::default();
        let [a, b] = [o.received(), o.received()];
        o.reconnected();
        assert_eq!(finish(&mut o, a, 1), Vec::<u16>::new());
        let c = o.received();
        assert_eq!(finish(&mut o, c, 1), vec![1], "nothing old holds the new connection");
        assert_eq!(finish(&mut o, b, 2), Vec::<u16>::new());
        assert!(o.pending.is_empty());
    }

    #[test]
    fn finishing_twice_sends_once() {
        let mut o = InOrder::default();
        let a = o.received();
        assert_eq!(finish(&mut o, a, 1), vec![1]);
        assert_eq!(finish(&mut o, a, 1), Vec::<u16>::new());
    }
}
