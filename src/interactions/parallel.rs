//! CPU-bound work over the entries of a large Bundle (validation, index extraction), spread over
//! the machine's cores. A transaction's entries are independent until they are written, and one
//! Bundle would otherwise keep a single core busy while the others wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Below this many items the work stays on the calling thread: starting a thread (tens of
/// microseconds) costs more than it saves.
const MIN_ITEMS_TO_SPLIT: usize = 16;

/// Items a thread takes at a time. Entries differ a lot in cost (an Observation against an
/// ExplanationOfBenefit) and a Bundle groups them by type, so fixed halves left one core idle
/// while the other finished; small blocks taken in turn keep both busy to the end.
const BLOCK: usize = 8;

/// `items.map(f)` in order, computed on scoped threads (the calling thread is one of them), each
/// taking the next `BLOCK` items until none are left.
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < MIN_ITEMS_TO_SPLIT {
        return items.into_iter().map(f).collect();
    }
    let count = items.len();
    let inputs: Vec<Mutex<Option<T>>> = items.into_iter().map(|item| Mutex::new(Some(item))).collect();
    let outputs: Vec<Mutex<Option<R>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let start = next.fetch_add(BLOCK, Ordering::Relaxed);
            if start >= count {
                break;
            }
            for i in start..(start + BLOCK).min(count) {
                let item = inputs[i]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .expect("each item is taken once");
                let output = f(item);
                *outputs[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(output);
            }
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(count.div_ceil(BLOCK)))
            .map(|_| scope.spawn(work))
            .collect();
        work();
        for helper in helpers {
            helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
    });
    outputs
        .into_iter()
        .map(|output| {
            output
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every item was mapped")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_the_items() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = super::map(items, |n| n * 2);
        assert_eq!(doubled, (0..1000).map(|n| n * 2).collect::<Vec<u32>>());
        assert_eq!(super::map(vec![1, 2, 3], |n: i32| -n), vec![-1, -2, -3]);
        assert!(super::map(Vec::<u8>::new(), |n| n).is_empty());
    }
}
