//! Releasing a once-cell's value when its interpreter's end begins (`SlottedOnce::retire`: the
//! canonical cell, then the lock-free slot), racing with a thread that reads or initialises the
//! same interpreter's value the way `once_for` does (slot read, then the locked path, then a
//! publish into the slot).
//!
//! Invariants, in every interleaving: every value made is released exactly once (by the end's
//! retire, as a racing initialiser's loser, or handed back unstored to an initialiser that
//! finished after the retire), never lost and never twice; after the end nothing is kept for
//! the interpreter: no canonical value, no slot value (a later lock-free read sees nothing), and
//! a later initialisation is refused without running.

use interpsafe_protocol::{OnceError, SeededBug, Seeds, SlottedOnce};
use loom::sync::Arc;
use loom::thread;
use loom_tests::Search::Exhaustive;
use loom_tests::{assert_model_fails, check, key, FULL_BOUND};

const SLOT: u32 = 3;
/// The value stored before the model's threads start, in the prefilled shape.
const PREFILLED: usize = 0x100;

/// What one reader/initialiser did: the value it made (if its initialiser ran) and what it must
/// release itself (a loser, or its value handed back unstored).
struct Outcome {
    made: Option<usize>,
    releases: Option<usize>,
}

/// `once_for` on a thread attached to interpreter 1: the slot, then the locked path.
fn use_cell(cell: &SlottedOnce, made: usize) -> Outcome {
    if cell.get_fast(SLOT).is_some() {
        return Outcome { made: None, releases: None };
    }
    let mut ran = false;
    let got = cell.get_or_try_init(key(1), Some(SLOT), || {
        ran = true;
        Ok::<_, ()>(made)
    });
    let made = ran.then_some(made);
    match got {
        Ok(init) => {
            if let Some(loser) = init.loser {
                assert_eq!(Some(loser), made, "a loser got someone else's value back");
            }
            Outcome { made, releases: init.loser }
        }
        Err(OnceError::Ended { key: k, unstored }) => {
            assert_eq!(k, key(1));
            assert_eq!(unstored, made.filter(|_| unstored.is_some()));
            assert!(
                unstored.is_some() || !ran,
                "an initialiser's value was neither stored nor handed back"
            );
            Outcome { made, releases: unstored }
        }
        Err(e) => panic!("unexpected once-cell error {e:?}"),
    }
}

/// `users` threads use interpreter 1's value (making 0x10, 0x20, ...) while another thread,
/// ending interpreter 1, retires it. With `prefilled`, the value was stored before on the locked
/// path only (by a thread without a slot), so a user's read goes through the lock and publishes
/// into the slot: the publish that races with the slot's retirement.
fn release_at_end(
    seeds: Seeds,
    users: usize,
    prefilled: bool,
) -> impl Fn() + Sync + Send + 'static {
    move || {
        let cell = Arc::new(SlottedOnce::with_seeds(seeds.clone()));
        let mut made = Vec::new();
        if prefilled {
            let init = cell.get_or_try_init(key(1), None, || Ok::<_, ()>(PREFILLED)).unwrap();
            assert!(init.initialised_here);
            made.push(PREFILLED);
        }
        let threads: Vec<_> = (0..users)
            .map(|n| {
                let cell = cell.clone();
                thread::spawn(move || use_cell(&cell, 0x10 * (n + 1)))
            })
            .collect();
        let ender = {
            let cell = cell.clone();
            thread::spawn(move || cell.retire(key(1), Some(SLOT)))
        };
        let mut released = Vec::new();
        for t in threads {
            let out = t.join().unwrap();
            made.extend(out.made);
            released.extend(out.releases);
        }
        released.extend(ender.join().unwrap());
        made.sort_unstable();
        released.sort_unstable();
        assert_eq!(released, made, "values made vs released");

        // Nothing is kept for the ended interpreter, on either path.
        assert_eq!(cell.get_fast(SLOT), None, "the slot still holds a value after the end");
        assert!(cell.keys().is_empty(), "the cell still holds a value after the end");
        let mut ran = false;
        let late = cell.get_or_try_init(key(1), Some(SLOT), || {
            ran = true;
            Ok::<_, ()>(0x999)
        });
        assert!(matches!(late, Err(OnceError::Ended { unstored: None, .. })), "{late:?}");
        assert!(!ran, "an initialiser ran for an ended interpreter");
    }
}

#[test]
fn once_release_at_end_vs_init() {
    check("once_release_at_end_vs_init", Exhaustive, release_at_end(Seeds::none(), 1, false));
}

#[test]
fn once_release_at_end_vs_get() {
    check("once_release_at_end_vs_get", Exhaustive, release_at_end(Seeds::none(), 1, true));
}

/// Two initialisers and the end: a loser and an unstored value in one run. Three threads on one
/// reader-writer lock are bounded, as `once_two_interpreters` is.
#[test]
fn once_release_at_end_vs_two_inits() {
    check("once_release_at_end_vs_two_inits", FULL_BOUND, release_at_end(Seeds::none(), 2, false));
}

#[test]
fn seeded_once_store_after_retire_is_found() {
    assert_model_fails(
        "once_release_at_end_vs_init",
        "OnceStoreAfterRetire",
        Exhaustive,
        release_at_end(Seeds::none().with(SeededBug::OnceStoreAfterRetire), 1, false),
    );
}

#[test]
fn seeded_slot_retire_clears_is_found() {
    assert_model_fails(
        "once_release_at_end_vs_get",
        "SlotRetireClears",
        Exhaustive,
        release_at_end(Seeds::none().with(SeededBug::SlotRetireClears), 1, true),
    );
}
