//! A lock-free, set-once table of per-interpreter values indexed by the interpreter's slot.
//!
//! The registry gives every interpreter a dense slot, never reused within the process, so a value
//! stored at a slot can only ever belong to that interpreter. Reading is two acquire loads (the
//! chunk, then the value); writing publishes a value once with a compare-and-swap. Chunks of
//! [`CHUNK`] slots are allocated on first use and installed with a compare-and-swap too (the
//! loser frees its own); they live as long as the table. Slots beyond [`CAPACITY`] are not
//! stored: callers fall back to their locked path. Values are non-zero (object addresses); zero
//! means empty, and [`RETIRED`] (1, never an object's address) marks a slot whose interpreter has
//! ended: [`SlotTable::retire`] takes the value out and leaves the mark, which no later
//! [`SlotTable::publish`] can replace, so a publisher that read the value before the end cannot put
//! a released address back. The chunks' pointers sit inline in the table, so a read through a
//! pointer to the table is still three loads. This is the fast path of the per-interpreter once-cells, the same idea as
//! CPython's per-interpreter module-state array.

use crate::seed::{SeededBug, Seeds};
use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Slots per chunk.
pub const CHUNK: usize = 64;
/// Chunks per table.
pub const CHUNKS: usize = 64;
/// Slots a table can hold.
pub const CAPACITY: usize = CHUNK * CHUNKS;

/// The mark of a retired slot: not an address (objects are aligned), not empty.
pub const RETIRED: usize = 1;

type Chunk = [AtomicUsize; CHUNK];

/// A set-once value per slot.
#[derive(Debug)]
pub struct SlotTable {
    chunks: [AtomicPtr<Chunk>; CHUNKS],
    seeds: Seeds,
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable::new()
    }
}

impl SlotTable {
    /// An empty table.
    pub fn new() -> Self {
        SlotTable::with_seeds(Seeds::none())
    }

    /// An empty table with seeded bugs (only switchable under `--cfg interpsafe_loom`).
    pub fn with_seeds(seeds: Seeds) -> Self {
        SlotTable { chunks: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())), seeds }
    }

    /// The value at `slot`, if one was published and not retired.
    #[inline]
    pub fn get(&self, slot: u32) -> Option<usize> {
        let slot = slot as usize;
        let chunk = self.chunks.get(slot / CHUNK)?.load(Ordering::Acquire);
        if chunk.is_null() {
            return None;
        }
        // SAFETY: a non-null chunk pointer was installed from a leaked Box and is only freed when
        // the table drops, which `&self` rules out.
        let v = unsafe { &*chunk }[slot % CHUNK].load(Ordering::Acquire);
        (v > RETIRED).then_some(v)
    }

    /// Publishes `value` (an address: above [`RETIRED`]) at `slot` if it is empty; returns the
    /// value the slot holds afterwards, or `None` when the slot is beyond [`CAPACITY`], `value` is
    /// not an address, or the slot is retired.
    pub fn publish(&self, slot: u32, value: usize) -> Option<usize> {
        if value <= RETIRED {
            return None;
        }
        let slot_cell = self.slot_cell(slot)?;
        match slot_cell.compare_exchange(0, value, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Some(value),
            Err(RETIRED) => None,
            Err(existing) => Some(existing),
        }
    }

    /// Retires `slot` for good (its interpreter is ending): takes out the value it holds, if any,
    /// and leaves the [`RETIRED`] mark, allocating the slot's chunk if needed so that a publish
    /// racing with the end finds the mark too. `None` beyond [`CAPACITY`] (nothing is stored
    /// there) or when the slot held no value.
    pub fn retire(&self, slot: u32) -> Option<usize> {
        let slot_cell = self.slot_cell(slot)?;
        let old = if self.seeds.active(SeededBug::SlotRetireClears) {
            // The seeded bug: clear the slot instead of marking it.
            slot_cell.swap(0, Ordering::AcqRel)
        } else {
            slot_cell.swap(RETIRED, Ordering::AcqRel)
        };
        (old > RETIRED).then_some(old)
    }

    /// The cell of `slot`, installing its chunk first if there is none; `None` beyond
    /// [`CAPACITY`].
    fn slot_cell(&self, slot: u32) -> Option<&AtomicUsize> {
        let slot = slot as usize;
        let cell = self.chunks.get(slot / CHUNK)?;
        let mut chunk = cell.load(Ordering::Acquire);
        if chunk.is_null() {
            let fresh: *mut Chunk =
                Box::into_raw(Box::new(std::array::from_fn(|_| AtomicUsize::new(0))));
            if self.seeds.active(SeededBug::SlotChunkStoreNoCas) {
                // The seeded bug: install without checking, overwriting a racing install.
                cell.store(fresh, Ordering::Release);
                chunk = fresh;
            } else {
                match cell.compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => chunk = fresh,
                    Err(installed) => {
                        // SAFETY: `fresh` was never shared; it is ours to free.
                        drop(unsafe { Box::from_raw(fresh) });
                        chunk = installed;
                    }
                }
            }
        }
        // SAFETY: as in `get`: installed from a leaked Box, freed only when the table drops.
        Some(&unsafe { &*chunk }[slot % CHUNK])
    }
}

impl Drop for SlotTable {
    fn drop(&mut self) {
        for cell in self.chunks.iter() {
            let chunk = cell.load(Ordering::Acquire);
            if !chunk.is_null() {
                // SAFETY: installed from a leaked Box; `&mut self` means no reader remains.
                drop(unsafe { Box::from_raw(chunk) });
            }
        }
    }
}

#[cfg(all(test, not(interpsafe_loom)))]
mod tests {
    use super::*;

    #[test]
    fn set_once_per_slot_across_chunks() {
        let t = SlotTable::new();
        assert_eq!(t.get(0), None);
        assert_eq!(t.publish(0, 10), Some(10));
        assert_eq!(t.publish(0, 11), Some(10), "a slot is set once");
        assert_eq!(t.publish(130, 7), Some(7));
        assert_eq!(t.get(130), Some(7));
        assert_eq!(t.get(129), None);
        assert_eq!(t.publish(CAPACITY as u32, 1), None);
        assert_eq!(t.get(CAPACITY as u32), None);
        assert_eq!(t.publish(3, 0), None);
        assert_eq!(t.publish(3, RETIRED), None);
    }

    #[test]
    fn retired_slots_stay_retired() {
        let t = SlotTable::new();
        assert_eq!(t.publish(5, 40), Some(40));
        assert_eq!(t.retire(5), Some(40));
        assert_eq!(t.get(5), None);
        assert_eq!(t.publish(5, 48), None, "a retired slot takes no value");
        assert_eq!(t.get(5), None);
        assert_eq!(t.retire(5), None);
        // A slot retired before anything was published there, in a chunk not yet allocated.
        assert_eq!(t.retire(200), None);
        assert_eq!(t.publish(200, 64), None);
        assert_eq!(t.get(200), None);
        assert_eq!(t.retire(CAPACITY as u32), None);
    }

    #[test]
    fn racing_publishers_agree() {
        let t = std::sync::Arc::new(SlotTable::new());
        let hs: Vec<_> = (2..=5usize)
            .map(|v| {
                let t = t.clone();
                std::thread::spawn(move || t.publish(77, v).unwrap())
            })
            .collect();
        let seen: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(seen.iter().all(|v| *v == seen[0]));
        assert_eq!(t.get(77), Some(seen[0]));
    }
}
