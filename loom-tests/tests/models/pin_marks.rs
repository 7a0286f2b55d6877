//! The running-main marks that pins hold: the first pin of an interpreter marks it, the last one
//! unmarks it, while other threads take and drop pins of the same interpreter.
//!
//! The mark is modelled as one atomic word (0 unmarked, 1 marked) that `mark` sets with a
//! compare-and-swap from 0 and `unmark` clears with one from 1, as the FFI edge does with the
//! interpreter's running-main field. Nobody else marks the interpreter in this model, so every
//! pin must be counted, and while a pin is held the word must read 1.

use interpsafe_protocol::{PinMarks, SeededBug, Seeds};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use loom_tests::Search::Exhaustive;
use loom_tests::{assert_model_fails, check};

/// The interpreter every pin in the model is of.
const INTERP: usize = 7;

/// Takes a pin, checks the invariant while holding it, and releases it.
fn pin_and_release(marks: &PinMarks, word: &AtomicUsize) {
    let mark = || word.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok();
    let counted = marks.take(INTERP, mark);
    assert!(counted, "a pin went uncounted, so nothing keeps its interpreter marked");
    assert_eq!(word.load(Ordering::SeqCst), 1, "a pin is held while its interpreter is unmarked");
    marks.release(INTERP, || {
        let _ = word.compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst);
    });
}

/// The main thread holds a pin; one thread releases it while another takes and releases its
/// own. Afterwards no pin is counted and the word is clear.
fn last_pin_vs_new_pin(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let marks = Arc::new(PinMarks::with_seeds(seeds.clone()));
        let word = Arc::new(AtomicUsize::new(0));
        let first = marks.take(INTERP, || {
            word.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        });
        assert!(first);
        let releaser = {
            let (marks, word) = (Arc::clone(&marks), Arc::clone(&word));
            thread::spawn(move || {
                marks.release(INTERP, || {
                    let _ = word.compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst);
                })
            })
        };
        let taker = {
            let (marks, word) = (Arc::clone(&marks), Arc::clone(&word));
            thread::spawn(move || pin_and_release(&marks, &word))
        };
        releaser.join().unwrap();
        taker.join().unwrap();
        assert_eq!(marks.count(INTERP), 0, "pins left counted");
        assert_eq!(word.load(Ordering::SeqCst), 0, "the mark outlived every pin");
    }
}

#[test]
fn pin_marks_last_pin_vs_new_pin() {
    check("pin_marks_last_pin_vs_new_pin", Exhaustive, last_pin_vs_new_pin(Seeds::none()));
}

#[test]
fn seeded_pin_unmark_outside_lock_is_found() {
    assert_model_fails(
        "pin_marks_last_pin_vs_new_pin",
        "PinUnmarkOutsideLock",
        Exhaustive,
        last_pin_vs_new_pin(Seeds::none().with(SeededBug::PinUnmarkOutsideLock)),
    );
}
