//! The slot table behind the once-cells' fast path: publishers racing to install a chunk and to
//! set a slot, and a reader that must see either nothing or the one agreed value.

use interpsafe_protocol::{SeededBug, Seeds, SlotTable};
use loom::sync::Arc;
use loom::thread;
use loom_tests::Search::Exhaustive;
use loom_tests::{assert_model_fails, check};

/// Two publishers on two slots of one not-yet-allocated chunk, and a reader of the first slot.
fn two_slots(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let table = Arc::new(SlotTable::with_seeds(seeds.clone()));
        let t1 = {
            let t = table.clone();
            thread::spawn(move || t.publish(1, 11))
        };
        let t2 = {
            let t = table.clone();
            thread::spawn(move || t.publish(2, 22))
        };
        let seen = table.get(1);
        assert!(seen.is_none() || seen == Some(11), "a reader saw {seen:?} at slot 1");
        assert_eq!(t1.join().unwrap(), Some(11));
        assert_eq!(t2.join().unwrap(), Some(22));
        // Both publications must survive: no chunk install may drop the other's value.
        assert_eq!(table.get(1), Some(11), "slot 1 lost its value");
        assert_eq!(table.get(2), Some(22), "slot 2 lost its value");
    }
}

/// Two publishers racing on one slot: both return the same winner, which the table holds.
fn one_slot() -> impl Fn() + Sync + Send + 'static {
    || {
        let table = Arc::new(SlotTable::new());
        let hs: Vec<_> = [5usize, 6]
            .into_iter()
            .map(|v| {
                let t = table.clone();
                thread::spawn(move || t.publish(7, v).unwrap())
            })
            .collect();
        let got: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(got[0], got[1], "two values handed out for one slot: {got:?}");
        assert_eq!(table.get(7), Some(got[0]));
    }
}

#[test]
fn slot_table_two_slots_one_chunk() {
    check("slot_table_two_slots_one_chunk", Exhaustive, two_slots(Seeds::none()));
}

#[test]
fn slot_table_one_slot_two_publishers() {
    check("slot_table_one_slot_two_publishers", Exhaustive, one_slot());
}

#[test]
fn seeded_chunk_store_without_cas_is_found() {
    assert_model_fails(
        "slot_table_two_slots_one_chunk",
        "SlotChunkStoreNoCas",
        Exhaustive,
        two_slots(Seeds::none().with(SeededBug::SlotChunkStoreNoCas)),
    );
}
