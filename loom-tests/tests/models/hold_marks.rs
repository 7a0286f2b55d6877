//! The running-main mark that holds keep: the first hold of an interpreter (a suspended thread
//! state, or a pin) marks it, the last one unmarks it, while other threads take and drop holds of
//! the same interpreter.
//!
//! The mark is modelled as one atomic word (0 unmarked, 1 marked) that `mark` sets with a
//! compare-and-swap from 0 and `unmark` clears with one from 1, as the FFI edge does with the
//! interpreter's running-main field. Nobody else marks the interpreter in this model, so every
//! hold must be counted, and while a hold is held the word must read 1.

use interpsafe_protocol::{HoldMarks, SeededBug, Seeds};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use loom_tests::Search::Exhaustive;
use loom_tests::{assert_model_fails, check};

/// The interpreter every hold in the model is of.
const INTERP: usize = 7;

/// Takes a hold, marking the word if it is the first.
fn take(marks: &HoldMarks, word: &AtomicUsize) -> bool {
    marks.take(INTERP, || word.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok())
}

/// Releases a hold, unmarking the word if it is the last.
fn release(marks: &HoldMarks, word: &AtomicUsize) {
    marks.release(INTERP, || {
        let _ = word.compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst);
    });
}

/// Takes a hold, checks the invariant while holding it, and releases it.
fn hold_and_release(marks: &HoldMarks, word: &AtomicUsize) {
    assert!(take(marks, word), "a hold went uncounted, so nothing keeps its interpreter marked");
    assert_eq!(word.load(Ordering::SeqCst), 1, "a hold is held while its interpreter is unmarked");
    release(marks, word);
}

/// The main thread holds a hold (a thread state it suspended); one thread releases it while
/// another takes and releases its own (a pin). Afterwards no hold is counted and the word is clear.
fn last_hold_vs_new_hold(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let marks = Arc::new(HoldMarks::with_seeds(seeds.clone()));
        let word = Arc::new(AtomicUsize::new(0));
        assert!(take(&marks, &word));
        let releaser = {
            let (marks, word) = (Arc::clone(&marks), Arc::clone(&word));
            thread::spawn(move || release(&marks, &word))
        };
        let taker = {
            let (marks, word) = (Arc::clone(&marks), Arc::clone(&word));
            thread::spawn(move || hold_and_release(&marks, &word))
        };
        releaser.join().unwrap();
        taker.join().unwrap();
        assert_eq!(marks.count(INTERP), 0, "holds left counted");
        assert_eq!(word.load(Ordering::SeqCst), 0, "the mark outlived every hold");
    }
}

#[test]
fn hold_marks_last_hold_vs_new_hold() {
    check("hold_marks_last_hold_vs_new_hold", Exhaustive, last_hold_vs_new_hold(Seeds::none()));
}

#[test]
fn seeded_hold_unmark_outside_lock_is_found() {
    assert_model_fails(
        "hold_marks_last_hold_vs_new_hold",
        "HoldUnmarkOutsideLock",
        Exhaustive,
        last_hold_vs_new_hold(Seeds::none().with(SeededBug::HoldUnmarkOutsideLock)),
    );
}

#[test]
fn seeded_hold_unmark_ignores_others_is_found() {
    assert_model_fails(
        "hold_marks_last_hold_vs_new_hold",
        "HoldUnmarkIgnoresOthers",
        Exhaustive,
        last_hold_vs_new_hold(Seeds::none().with(SeededBug::HoldUnmarkIgnoresOthers)),
    );
}
