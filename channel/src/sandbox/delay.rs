//! The injected latency, kept to a few microseconds. tokio's timer works in whole milliseconds
//! and fires late: measured on this machine, `tokio::time::sleep` of 1 ms took 2.1 ms and of
//! 20 ms took 21.4 ms on average — a "20 ms" sandbox answered in 21.4 ms, and every benchmark
//! bound on in-flight ÷ latency charged the client with the sandbox's 7 %. One thread keeps the
//! deadlines in a heap and wakes each waiter on time (a condition variable's timed wait has the
//! kernel's microsecond timers underneath).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Wait `latency` from now, to within the kernel's timer slack.
pub async fn wait(latency: Duration) {
    let (wake, woken) = oneshot::channel();
    clock().add(Instant::now() + latency, wake);
    // The clock thread never drops a sender unsent, and lives as long as the process.
    let _ = woken.await;
}

struct Waiter {
    at: Instant,
    /// Breaks ties, so that two waiters with the same deadline are still two entries.
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Waiter) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Waiter) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Waiter) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Clock {
    waiters: Mutex<(BinaryHeap<Reverse<Waiter>>, u64)>,
    changed: Condvar,
}

/// The process's one clock thread, started on first use.
fn clock() -> &'static Clock {
    static CLOCK: OnceLock<&'static Clock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let clock: &'static Clock = Box::leak(Box::default());
        std::thread::Builder::new()
            .name("sandbox-latency".into())
            .spawn(move || clock.run())
            .expect("the sandbox's latency thread starts");
        clock
    })
}

impl Clock {
    fn add(&self, at: Instant, wake: oneshot::Sender<()>) {
        let mut guard = self.waiters.lock().expect("latency clock lock");
        let (heap, seq) = &mut *guard;
        *seq += 1;
        let earliest = heap.peek().is_none_or(|Reverse(w)| at < w.at);
        heap.push(Reverse(Waiter { at, seq: *seq, wake }));
        if earliest {
            self.changed.notify_one();
        }
    }

    fn run(&self) {
        let mut guard = self.waiters.lock().expect("latency clock lock");
        loop {
            let now = Instant::now();
            match guard.0.peek().map(|Reverse(w)| w.at) {
                None => guard = self.changed.wait(guard).expect("latency clock lock"),
                Some(at) if at <= now => {
                    let Reverse(due) = guard.0.pop().expect("peeked");
                    let _ = due.wake.send(()); // a waiter that gave up (its request dropped)
                }
                Some(at) => {
                    guard = self.changed.wait_timeout(guard, at - now).expect("latency clock lock").0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_waiter_wakes_before_its_deadline() {
        let started = Instant::now();
        let mut handles = Vec::new();
        for ms in [30u64, 10, 20, 10] {
            handles.push(tokio::spawn(async move {
                let before = Instant::now();
                wait(Duration::from_millis(ms)).await;
                (ms, before.elapsed())
            }));
        }
        for h in handles {
            let (ms, took) = h.await.unwrap();
            assert!(took >= Duration::from_millis(ms), "{ms} ms woke after {took:?}");
        }
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
