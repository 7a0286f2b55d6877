//! Unit tests of the decref pool with real threads (loom-tests checks the interleavings).

use super::*;
use crate::id::{Epoch, InterpreterId};
use std::collections::BTreeSet;
use std::sync::{Arc, Barrier, Mutex as StdMutex};
use std::thread;

fn key(id: i64) -> InterpreterKey {
    InterpreterKey { epoch: Epoch(0), id: InterpreterId(id) }
}

/// An object address that records its owner, so a test can tell where it was released.
fn object(owner: i64, seq: usize) -> usize {
    ((owner as usize) << 32) | seq
}

fn owner_of(object: usize) -> i64 {
    (object >> 32) as i64
}

#[test]
fn empty_pool_takes_nothing() {
    let pool = DecrefPool::new();
    assert!(pool.take(key(1)).is_empty());
    assert_eq!(pool.stats(), PoolStats::default());
}

#[test]
fn take_hands_out_only_the_owners_objects() {
    let pool = DecrefPool::new();
    assert_eq!(pool.defer(key(1), object(1, 0)), Deferred::Queued);
    assert_eq!(pool.defer(key(2), object(2, 0)), Deferred::Queued);
    assert_eq!(pool.defer(key(1), object(1, 1)), Deferred::Queued);
    assert_eq!(pool.pending(key(1)), 2);
    assert_eq!(pool.take(key(1)), vec![object(1, 0), object(1, 1)]);
    assert!(pool.take(key(1)).is_empty(), "handed out twice");
    assert!(pool.take(key(3)).is_empty(), "unknown owner");
    assert_eq!(pool.take(key(2)), vec![object(2, 0)]);
    let stats = pool.stats();
    assert_eq!(stats.deferred_total, 3);
    assert_eq!(stats.released_total, 3);
    assert_eq!(stats.pending, 0);
    assert!(stats.balanced());
}

#[test]
fn the_same_key_in_another_epoch_is_another_owner() {
    let pool = DecrefPool::new();
    let old = key(1);
    let new = InterpreterKey { epoch: Epoch(1), id: InterpreterId(1) };
    let _ = pool.defer(old, 10);
    assert!(pool.take(new).is_empty());
    assert_eq!(pool.take(old), vec![10]);
}

#[test]
fn close_hands_out_the_rest_and_later_defers_are_discarded() {
    let pool = DecrefPool::new();
    let _ = pool.defer(key(1), 10);
    let _ = pool.defer(key(1), 11);
    assert_eq!(pool.close(key(1)), vec![10, 11]);
    assert!(pool.is_closed(key(1)));
    assert_eq!(pool.defer(key(1), 12), Deferred::Discarded);
    assert!(pool.close(key(1)).is_empty(), "close is idempotent");
    assert!(pool.take(key(1)).is_empty());
    let stats = pool.stats();
    assert_eq!(
        stats,
        PoolStats {
            deferred_total: 3,
            released_total: 2,
            discarded_total: 1,
            pending: 0,
            stranded: 0
        }
    );
    assert!(stats.balanced());
}

#[test]
fn close_of_an_unseen_owner_still_closes_it() {
    let pool = DecrefPool::new();
    assert!(pool.close(key(4)).is_empty());
    assert_eq!(pool.defer(key(4), 1), Deferred::Discarded);
    assert_eq!(pool.stats().discarded_total, 1);
}

#[test]
fn discard_ended_drops_without_handing_out_and_counts() {
    let pool = DecrefPool::new();
    let _ = pool.defer(key(2), 20);
    let _ = pool.defer(key(2), 21);
    let _ = pool.defer(key(3), 30);
    assert_eq!(pool.discard_ended(key(2)), 2);
    assert_eq!(pool.discard_ended(key(2)), 0, "idempotent");
    assert!(pool.close(key(2)).is_empty(), "nothing handed out after the end");
    assert_eq!(pool.defer(key(2), 22), Deferred::Discarded);
    assert_eq!(pool.pending(key(3)), 1, "other owners untouched");
    let stats = pool.stats();
    assert_eq!(stats.discarded_total, 3);
    assert_eq!(stats.pending, 1);
    assert!(stats.balanced());
}

#[test]
fn fast_path_count_follows_the_queues() {
    let pool = DecrefPool::new();
    let _ = pool.defer(key(1), 1);
    let _ = pool.defer(key(2), 2);
    assert_eq!(pool.queued.load(Ordering::Relaxed), 2);
    let _ = pool.take(key(1));
    assert_eq!(pool.queued.load(Ordering::Relaxed), 1);
    pool.discard_ended(key(2));
    assert_eq!(pool.queued.load(Ordering::Relaxed), 0);
}

/// Droppers defer objects for three owners while one attached thread per owner keeps taking; at
/// the end each owner either closes (releases the rest) or is discarded. Every object must be
/// released once in its owner or discarded, never both, never twice.
#[test]
fn concurrent_defer_take_close_loses_nothing() {
    const OWNERS: i64 = 3;
    const DROPPERS: usize = 4;
    const PER_DROPPER: usize = 2000;
    let pool = Arc::new(DecrefPool::new());
    let released = Arc::new(StdMutex::new(Vec::<usize>::new()));
    let discarded = Arc::new(StdMutex::new(Vec::<usize>::new()));
    let start = Arc::new(Barrier::new(DROPPERS + OWNERS as usize));
    let droppers_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let mut handles = Vec::new();
    for d in 0..DROPPERS {
        let (pool, start, done, discarded) =
            (pool.clone(), start.clone(), droppers_done.clone(), discarded.clone());
        handles.push(thread::spawn(move || {
            start.wait();
            for i in 0..PER_DROPPER {
                let owner = (i % OWNERS as usize) as i64;
                let obj = object(owner, d * PER_DROPPER + i);
                if pool.defer(key(owner), obj) == Deferred::Discarded {
                    discarded.lock().unwrap().push(obj);
                }
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    for owner in 0..OWNERS {
        let (pool, start, done, released) =
            (pool.clone(), start.clone(), droppers_done.clone(), released.clone());
        handles.push(thread::spawn(move || {
            start.wait();
            // Owner 0 ends early, while droppers still defer to it.
            let rounds = if owner == 0 { 50 } else { usize::MAX };
            let mut round = 0;
            while round < rounds && done.load(std::sync::atomic::Ordering::SeqCst) < DROPPERS {
                let got = pool.take(key(owner));
                assert!(
                    got.iter().all(|&o| owner_of(o) == owner),
                    "released in the wrong interpreter"
                );
                released.lock().unwrap().extend(got);
                round += 1;
                thread::yield_now();
            }
            if owner == 2 {
                // Ended by Python code: whatever is queued is gone with it.
                pool.discard_ended(key(owner));
            } else {
                let rest = pool.close(key(owner));
                assert!(rest.iter().all(|&o| owner_of(o) == owner));
                released.lock().unwrap().extend(rest);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }

    let stats = pool.stats();
    assert!(stats.balanced(), "{stats:?}");
    assert_eq!(stats.stranded, 0);
    assert_eq!(stats.pending, 0, "every owner was closed");
    assert_eq!(stats.deferred_total, (DROPPERS * PER_DROPPER) as u64);
    let released = released.lock().unwrap();
    let unique: BTreeSet<usize> = released.iter().copied().collect();
    assert_eq!(unique.len(), released.len(), "an object was released twice");
    assert_eq!(released.len() as u64, stats.released_total);
    let late: BTreeSet<usize> = discarded.lock().unwrap().iter().copied().collect();
    assert!(unique.is_disjoint(&late), "an object was both released and discarded");
    assert!(late.iter().all(|&o| owner_of(o) == 0 || owner_of(o) == 2));
}
