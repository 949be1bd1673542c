//! What was sent, by transport-wide sequence number, so that feedback (which names only
//! sequence numbers and arrival times) can be matched with send times and sizes.

use std::collections::VecDeque;
use std::time::Duration;

use super::PacketResult;

/// Sent packets are kept this long for their feedback; later feedback is ignored.
const KEEP: Duration = Duration::from_secs(5);
/// And at most this many (a 16-bit sequence number must not be mistaken for a newer one).
const MAX_PACKETS: usize = 1 << 14;

#[derive(Clone, Copy, Debug)]
struct Sent {
    at: Duration,
    size: u32,
    /// Feedback for it arrived already (a packet is counted once).
    reported: bool,
}

/// The packets of one connection, in sequence order.
#[derive(Debug, Default)]
pub struct SendHistory {
    /// The unwrapped sequence number of `packets[0]`.
    first: i64,
    /// The last unwrapped sequence number recorded.
    last: Option<i64>,
    packets: VecDeque<Option<Sent>>,
}

impl SendHistory {
    /// A packet left with this transport-wide sequence number.
    pub fn record(&mut self, seq: u16, at: Duration, size: usize) {
        let seq = self.unwrap(seq);
        let Some(last) = self.last else {
            (self.first, self.last) = (seq, Some(seq));
            self.packets.push_back(Some(Sent { at, size: clamp_size(size), reported: false }));
            return;
        };
        if seq <= last {
            // A packet numbered before the last but sent after it (the sender numbers a
            // packet, then paces it): fill its place, unless it was recorded or forgotten.
            let slot = usize::try_from(seq - self.first).ok().and_then(|i| self.packets.get_mut(i));
            if let Some(slot @ None) = slot {
                *slot = Some(Sent { at, size: clamp_size(size), reported: false });
            }
            return;
        }
        for _ in last + 1..seq {
            self.packets.push_back(None);
        }
        self.packets.push_back(Some(Sent { at, size: clamp_size(size), reported: false }));
        self.last = Some(seq);
        while self.packets.len() > MAX_PACKETS
            || self.packets.front().is_some_and(|p| p.is_none_or(|p| at.saturating_sub(p.at) > KEEP))
        {
            self.packets.pop_front();
            self.first += 1;
        }
    }

    /// Matches feedback (sequence number, arrival time if received) with what was sent.
    /// Unknown, forgotten and already reported packets are left out.
    pub fn results(
        &mut self,
        feedback: impl IntoIterator<Item = (u16, Option<Duration>)>,
    ) -> Vec<PacketResult> {
        let mut results = Vec::new();
        for (seq, arrival) in feedback {
            let index = self.unwrap(seq) - self.first;
            let Some(Some(sent)) = usize::try_from(index).ok().and_then(|i| self.packets.get_mut(i)) else {
                continue;
            };
            if sent.reported {
                continue;
            }
            // A packet reported lost may still arrive; only an arrival is final.
            sent.reported = arrival.is_some();
            results.push(PacketResult { send_time: sent.at, size: sent.size as usize, arrival });
        }
        results
    }

    /// The 16-bit number as the nearest 64-bit one to the last recorded.
    fn unwrap(&self, seq: u16) -> i64 {
        let Some(last) = self.last else { return i64::from(seq) };
        let delta = i64::from(seq.wrapping_sub(last as u16) as i16);
        last + delta
    }
}

fn clamp_size(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    #[test]
    fn feedback_is_matched_across_the_16_bit_wrap() {
        let mut history = SendHistory::default();
        for (i, seq) in (65_530..=65_535).chain(0..5).enumerate() {
            history.record(seq, ms(i as u64), 1000 + i);
        }
        let results =
            history.results([(65_535, Some(ms(40))), (0, None), (1, Some(ms(42))), (9, Some(ms(50)))]);
        let sent: Vec<_> = results.iter().map(|r| (r.send_time, r.size, r.arrival)).collect();
        assert_eq!(sent, [(ms(5), 1005, Some(ms(40))), (ms(6), 1006, None), (ms(7), 1007, Some(ms(42)))]);
        assert!(history.results([(65_535, Some(ms(41)))]).is_empty(), "counted once");
        assert_eq!(history.results([(0, Some(ms(45)))]).len(), 1, "a late arrival after a loss report");
    }

    #[test]
    fn a_packet_sent_after_a_later_number_is_kept_once() {
        let mut history = SendHistory::default();
        history.record(10, ms(0), 100);
        history.record(12, ms(1), 100);
        history.record(11, ms(2), 300);
        history.record(11, ms(3), 999);
        let results = history.results([(11, Some(ms(30)))]);
        assert_eq!((results[0].send_time, results[0].size), (ms(2), 300));
    }

    #[test]
    fn old_packets_are_forgotten() {
        let mut history = SendHistory::default();
        history.record(1, ms(0), 1200);
        history.record(2, ms(6000), 1200);
        assert!(history.results([(1, Some(ms(6010)))]).is_empty());
        assert_eq!(history.results([(2, Some(ms(6010)))]).len(), 1);
    }
}
