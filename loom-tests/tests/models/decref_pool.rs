//! The per-interpreter deferred-decref pool: defers racing with the close or discard of their
//! owner's queue, takes that must hand out only the owner's objects, and the lock-free fast path
//! of `take`.
//!
//! Objects are numbers whose hundreds digit is their owner's interpreter ID (101 belongs to
//! interpreter 1), so every hand-out can be checked against the key it was made for.

use interpsafe_protocol::{DecrefPool, Deferred, InterpreterKey, PoolStats, SeededBug, Seeds};
use loom::sync::Arc;
use loom::thread;
use loom_tests::Search::Exhaustive;
use loom_tests::{assert_model_fails, check, key};

/// The interpreter an object belongs to.
fn owner(object: usize) -> i64 {
    (object / 100) as i64
}

/// Hands out `key`'s objects the way a thread attached to `key` does, checking that every one of
/// them belongs to `key` (no decref while attached to an interpreter other than the owner).
fn released_for(key: InterpreterKey, items: Vec<usize>, into: &mut Vec<usize>) {
    for object in items {
        assert_eq!(
            owner(object),
            key.id.0,
            "object {object} of interpreter {} handed out for {key}",
            owner(object)
        );
        into.push(object);
    }
}

/// The model's own accounting against the pool's: every object in `objects` was released or
/// discarded exactly once, and the pool's counts agree.
fn accounted(objects: &[usize], released: &[usize], discarded: &[usize], stats: PoolStats) {
    for &object in objects {
        let times = released.iter().chain(discarded).filter(|&&o| o == object).count();
        assert_eq!(
            times, 1,
            "object {object} was released or discarded {times} times (released {released:?}, \
             discarded {discarded:?}, {stats:?})"
        );
    }
    assert!(stats.balanced(), "unbalanced: {stats:?}");
    assert_eq!(stats.stranded, 0, "objects stranded in a closed queue: {stats:?}");
    assert_eq!(stats.pending, 0, "objects left queued: {stats:?}");
    assert_eq!(stats.deferred_total, objects.len() as u64, "{stats:?}");
    assert_eq!(stats.released_total, released.len() as u64, "{stats:?}");
    assert_eq!(stats.discarded_total, discarded.len() as u64, "{stats:?}");
}

/// How the owner's queue ends in [`defer_vs_end`].
#[derive(Clone, Copy)]
enum EndBy {
    /// A thread still attached to the owner takes what is queued, then closes the queue and
    /// releases what the close hands out, right before the interpreter ends.
    Close,
    /// The interpreter ended without the toolkit (Python code ended it): the queue is discarded.
    DiscardEnded,
}

/// `deferrers` threads each drop a handle of interpreter 1 away from it (`defer` of 101, 102, ...);
/// another ends interpreter 1's queue (see [`EndBy`]). Invariants: every object is released
/// exactly once (by the attached thread) or discarded exactly once (owner gone), never both, never
/// lost; the pool's counts agree (`deferred = released + discarded + pending`, nothing stranded,
/// nothing pending once the queue is closed); a take after the end hands out nothing.
fn defer_vs_end(
    seeds: Seeds,
    end_by: EndBy,
    deferrers: usize,
) -> impl Fn() + Sync + Send + 'static {
    move || {
        let pool = Arc::new(DecrefPool::with_seeds(seeds.clone()));
        let k1 = key(1);
        let objects: Vec<usize> = (0..deferrers).map(|n| 101 + n).collect();
        let threads: Vec<_> = objects
            .iter()
            .map(|&object| {
                let pool = pool.clone();
                thread::spawn(move || (object, pool.defer(k1, object)))
            })
            .collect();
        let ender = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut released = Vec::new();
                let mut discarded = 0;
                match end_by {
                    EndBy::Close => {
                        released_for(k1, pool.take(k1), &mut released);
                        released_for(k1, pool.close(k1), &mut released);
                    }
                    EndBy::DiscardEnded => discarded = pool.discard_ended(k1),
                }
                assert!(pool.is_closed(k1));
                (released, discarded)
            })
        };
        let mut discarded = Vec::new();
        let mut queued = Vec::new();
        for t in threads {
            match t.join().unwrap() {
                (object, Deferred::Discarded) => discarded.push(object),
                (object, Deferred::Queued) => queued.push(object),
            }
        }
        let (released, discarded_at_end) = ender.join().unwrap();
        match end_by {
            // Whatever was queued was handed out by the take or the close.
            EndBy::Close => assert_eq!(discarded_at_end, 0),
            // Whatever was queued was dropped by the discard.
            EndBy::DiscardEnded => {
                assert_eq!(discarded_at_end, queued.len(), "queued {queued:?}");
                discarded.extend(&queued);
            }
        }
        assert!(pool.take(k1).is_empty(), "a take after the end handed something out");
        accounted(&objects, &released, &discarded, pool.stats());
    }
}

#[test]
fn decref_defer_vs_close() {
    check("decref_defer_vs_close", Exhaustive, defer_vs_end(Seeds::none(), EndBy::Close, 1));
}

#[test]
fn decref_defer_vs_discard_ended() {
    check(
        "decref_defer_vs_discard_ended",
        Exhaustive,
        defer_vs_end(Seeds::none(), EndBy::DiscardEnded, 1),
    );
}

#[test]
fn decref_two_defers_vs_close() {
    check("decref_two_defers_vs_close", Exhaustive, defer_vs_end(Seeds::none(), EndBy::Close, 2));
}

#[test]
fn decref_two_defers_vs_discard_ended() {
    check(
        "decref_two_defers_vs_discard_ended",
        Exhaustive,
        defer_vs_end(Seeds::none(), EndBy::DiscardEnded, 2),
    );
}

#[test]
fn seeded_defer_check_then_act_is_found() {
    let seeds = Seeds::none().with(SeededBug::DecrefDeferCheckThenAct);
    assert_model_fails(
        "decref_defer_vs_close",
        "DecrefDeferCheckThenAct",
        Exhaustive,
        defer_vs_end(seeds, EndBy::Close, 1),
    );
}

#[test]
fn seeded_defer_check_then_act_is_found_by_discard() {
    let seeds = Seeds::none().with(SeededBug::DecrefDeferCheckThenAct);
    assert_model_fails(
        "decref_defer_vs_discard_ended",
        "DecrefDeferCheckThenAct",
        Exhaustive,
        defer_vs_end(seeds, EndBy::DiscardEnded, 1),
    );
}

/// Interpreter 2 has an object queued (201); one thread defers 101 for interpreter 1 (and, with
/// `defer_other`, another defers 202 for interpreter 2) while another, attached to interpreter 1,
/// takes its queue. Afterwards threads attached to 1 and 2 take what is left. Invariants: every
/// take hands out only objects of the key it was called for (no decref in the wrong interpreter,
/// PyO3 #4570); every object is released exactly once; counts agree.
fn take_only_owner(seeds: Seeds, defer_other: bool) -> impl Fn() + Sync + Send + 'static {
    move || {
        let pool = Arc::new(DecrefPool::with_seeds(seeds.clone()));
        let (k1, k2) = (key(1), key(2));
        assert_eq!(pool.defer(k2, 201), Deferred::Queued);
        let other = defer_other.then(|| {
            let pool = pool.clone();
            thread::spawn(move || pool.defer(k2, 202))
        });
        let deferrer = {
            let pool = pool.clone();
            thread::spawn(move || pool.defer(k1, 101))
        };
        let taker = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut released = Vec::new();
                released_for(k1, pool.take(k1), &mut released);
                released
            })
        };
        assert_eq!(deferrer.join().unwrap(), Deferred::Queued);
        let mut objects = vec![101, 201];
        if let Some(other) = other {
            assert_eq!(other.join().unwrap(), Deferred::Queued);
            objects.push(202);
        }
        let mut released = taker.join().unwrap();
        released_for(k1, pool.take(k1), &mut released);
        released_for(k2, pool.take(k2), &mut released);
        accounted(&objects, &released, &[], pool.stats());
    }
}

#[test]
fn decref_take_only_owner() {
    check("decref_take_only_owner", Exhaustive, take_only_owner(Seeds::none(), false));
}

#[test]
fn decref_take_only_owner_two_deferrers() {
    check("decref_take_only_owner_two_deferrers", Exhaustive, take_only_owner(Seeds::none(), true));
}

#[test]
fn seeded_take_any_owner_is_found() {
    let seeds = Seeds::none().with(SeededBug::DecrefTakeAnyOwner);
    assert_model_fails(
        "decref_take_only_owner",
        "DecrefTakeAnyOwner",
        Exhaustive,
        take_only_owner(seeds, false),
    );
}

/// The lock-free fast path of `take` (one relaxed load of the queued count). Interpreter 1 has
/// an object queued (100); one thread attached to it takes its queue while another defers 101 for
/// it. Afterwards (every defer happened-before) one more take must hand out whatever is still
/// queued: the fast path may miss a racing defer, never one that happened before the take.
/// Invariants: nothing left queued after the last take; every object released exactly once.
fn take_fast_path(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let pool = Arc::new(DecrefPool::with_seeds(seeds.clone()));
        let k1 = key(1);
        assert_eq!(pool.defer(k1, 100), Deferred::Queued);
        let taker = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut released = Vec::new();
                released_for(k1, pool.take(k1), &mut released);
                released
            })
        };
        let deferrer = {
            let pool = pool.clone();
            thread::spawn(move || pool.defer(k1, 101))
        };
        let mut released = taker.join().unwrap();
        assert_eq!(deferrer.join().unwrap(), Deferred::Queued);
        released_for(k1, pool.take(k1), &mut released);
        accounted(&[100, 101], &released, &[], pool.stats());
    }
}

#[test]
fn decref_take_fast_path() {
    check("decref_take_fast_path", Exhaustive, take_fast_path(Seeds::none()));
}

#[test]
fn seeded_publish_outside_lock_is_found() {
    let seeds = Seeds::none().with(SeededBug::DecrefPublishOutsideLock);
    assert_model_fails(
        "decref_take_fast_path",
        "DecrefPublishOutsideLock",
        Exhaustive,
        take_fast_path(seeds),
    );
}
