//! CPU-bound work over the entries of a large Bundle (validation, index extraction), spread over
//! the machine's cores. A transaction's entries are independent until they are written, and one
//! Bundle would otherwise keep a single core busy while the others wait.

/// Below this many items the work stays on the calling thread: starting threads costs more.
const MIN_ITEMS_TO_SPLIT: usize = 64;

/// `items.map(f)` in order, computed in contiguous chunks on scoped threads (the calling thread
/// takes the first chunk).
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < MIN_ITEMS_TO_SPLIT {
        return items.into_iter().map(f).collect();
    }
    let chunk_len = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items.into_iter();
    loop {
        let chunk: Vec<T> = rest.by_ref().take(chunk_len).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let mut chunks = chunks.into_iter();
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = first.into_iter().map(f).collect();
        for handle in handles {
            out.extend(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        out
    })
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
