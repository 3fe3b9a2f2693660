//! What one graph's store may take: each linear memory is bounded (`--max-memory-mib`), and so
//! is the sum of all of them (`--max-graph-memory-mib`). A graph is one store holding every
//! operator's instance, so without the total one item could grow every module to its own limit.
//!
//! A `memory.grow` past either bound fails, which a guest's allocator turns into a trap: the
//! item is dead-lettered, the instance rebuilt (which frees its memories) and the graph goes on.

/// The memory bounds of one store, and what its memories use now.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    per_memory: usize,
    total: usize,
    used: usize,
}

impl MemoryBudget {
    /// Bounds of `per_memory` bytes for each linear memory and `total` for all of them.
    pub fn new(per_memory: usize, total: usize) -> Self {
        Self {
            per_memory,
            total,
            used: 0,
        }
    }

    /// Bytes the store's memories use now.
    pub fn used(&self) -> usize {
        self.used
    }
}

impl wasmtime::ResourceLimiter for MemoryBudget {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current);
        if desired > self.per_memory || self.used.saturating_add(more) > self.total {
            return Ok(false);
        }
        self.used += more;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn each_memory_and_their_sum_are_bounded() {
        let mut b = MemoryBudget::new(10, 15);
        assert!(b.memory_growing(0, 8, None).unwrap());
        assert!(!b.memory_growing(8, 11, None).unwrap(), "past one memory's bound");
        assert!(b.memory_growing(0, 7, None).unwrap());
        assert_eq!(b.used(), 15);
        assert!(!b.memory_growing(7, 8, None).unwrap(), "past the total");
        assert_eq!(b.used(), 15, "a refused growth takes nothing");
    }
}
