//! A batch of work two threads share without a pool: each claims the next
//! item still unclaimed, works it out and leaves the result in the item's
//! slot; the thread that consumes the batch helps with what is left, then
//! takes every result in the items' order.
//!
//! `pmf apply` prepares each batch of partners on a thread of its own while
//! the batch before it is written. When the writer is done first, it would
//! wait: with a shared batch it prepares the rest of the next batch itself,
//! so neither core idles while the other works (no third thread contends
//! for the two cores).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// Items of a batch, their results as they are worked out, and how many
/// are done. See the module documentation.
pub struct SharedBatch<'a, I, T> {
    items: &'a [I],
    /// The next item no thread has claimed.
    next: AtomicUsize,
    /// Each item's result, once worked out.
    slots: Vec<Mutex<Option<T>>>,
    /// How many slots are filled.
    filled: Mutex<usize>,
    /// Told when the last slot is filled.
    all_filled: Condvar,
}

impl<'a, I: Sync, T: Send> SharedBatch<'a, I, T> {
    /// A batch of `items`, none claimed yet.
    pub fn new(items: &'a [I]) -> SharedBatch<'a, I, T> {
        SharedBatch {
            items,
            next: AtomicUsize::new(0),
            slots: items.iter().map(|_| Mutex::new(None)).collect(),
            filled: Mutex::new(0),
            all_filled: Condvar::new(),
        }
    }

    /// Claim items one at a time and work each out with `work` (given its
    /// position in the batch), until every item is claimed (by this thread
    /// or another). An item whose work panics is counted as done, its slot
    /// left empty, before the panic goes on: the consumer never waits for
    /// it ([`SharedBatch::finish`]).
    pub fn work(&self, work: impl Fn(usize, &I) -> T) {
        loop {
            let at = self.next.fetch_add(1, Ordering::Relaxed);
            let (Some(item), Some(slot)) = (self.items.get(at), self.slots.get(at)) else {
                return;
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(at, item)));
            match outcome {
                Ok(result) => {
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                    self.count_filled();
                }
                Err(panic) => {
                    self.count_filled();
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }

    /// Count one more slot done; tell the consumer when it was the last.
    fn count_filled(&self) {
        let mut filled = self.filled.lock().unwrap_or_else(PoisonError::into_inner);
        *filled += 1;
        if *filled == self.items.len() {
            self.all_filled.notify_all();
        }
    }

    /// Help with what is left ([`SharedBatch::work`]), wait for the items
    /// other threads claimed, and take every result, in the items' order;
    /// `None` when the work of an item panicked (on another thread: that
    /// thread's panic is reported when it is joined).
    pub fn finish(&self, work: impl Fn(usize, &I) -> T) -> Option<Vec<T>> {
        self.work(work);
        let mut filled = self.filled.lock().unwrap_or_else(PoisonError::into_inner);
        while *filled < self.items.len() {
            filled = self
                .all_filled
                .wait(filled)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(filled);
        self.slots
            .iter()
            .map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Two threads share every batch; each item is worked out once, and the
    /// results come back in order, whoever worked them out.
    #[test]
    fn every_item_is_worked_out_once_and_taken_in_order() {
        let items: Vec<u64> = (0..5_000).collect();
        let calls = AtomicUsize::new(0);
        let (mut by_helper, mut by_consumer) = (0, 0);
        for batch in items.chunks(700) {
            let shared = Arc::new(SharedBatch::new(batch));
            // Each thread's first item waits for the other's: both take part.
            let both = std::sync::Barrier::new(2);
            let (helper, consumer) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let results = std::thread::scope(|s| {
                let other = Arc::clone(&shared);
                let (calls, both, helper) = (&calls, &both, &helper);
                s.spawn(move || {
                    other.work(|_, &i| {
                        calls.fetch_add(1, Ordering::Relaxed);
                        if helper.fetch_add(1, Ordering::Relaxed) == 0 {
                            both.wait();
                        }
                        i * i
                    })
                });
                shared.finish(|_, &i| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if consumer.fetch_add(1, Ordering::Relaxed) == 0 {
                        both.wait();
                    }
                    i * i
                })
            });
            let results = results.expect("every item worked out");
            assert_eq!(
                results,
                batch.iter().map(|i| i * i).collect::<Vec<_>>(),
                "in order"
            );
            by_helper += helper.load(Ordering::Relaxed);
            by_consumer += consumer.load(Ordering::Relaxed);
        }
        assert_eq!(calls.load(Ordering::Relaxed), items.len(), "each once");
        assert_eq!(by_helper + by_consumer, items.len());
        assert!(
            by_helper >= 8 && by_consumer >= 8,
            "{by_helper} {by_consumer}"
        );
    }

    /// A batch no other thread works on is finished by its consumer alone;
    /// an empty one gives nothing.
    #[test]
    fn a_batch_alone_or_empty() {
        let items = [3, 1, 2];
        assert_eq!(
            SharedBatch::new(&items).finish(|at, &i| i + 10 * at),
            Some(vec![3, 11, 22])
        );
        let none: [u8; 0] = [];
        assert_eq!(SharedBatch::new(&none).finish(|_, &i| i), Some(vec![]));
    }

    /// When the work of an item panics on the other thread, the consumer
    /// does not wait for it forever: it gets no results, and the panic
    /// reaches whoever joins that thread.
    #[test]
    fn a_panic_on_the_other_thread_leaves_no_one_waiting() {
        let items: Vec<u32> = (0..64).collect();
        let shared = SharedBatch::new(&items);
        let seen = Mutex::new(None);
        let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    shared.work(|_, &i| {
                        if i == 0 {
                            panic!("item {i}");
                        }
                        i
                    })
                });
                // Item 0 is the helper's (it claims first): wait until it
                // is counted, then finish.
                while *shared.filled.lock().unwrap() == 0 {
                    std::thread::yield_now();
                }
                *seen.lock().unwrap() = Some(shared.finish(|_, &i| i));
            })
        }));
        assert!(joined.is_err(), "the helper's panic reaches the join");
        assert_eq!(*seen.lock().unwrap(), Some(None), "no results, no wait");
    }
}
