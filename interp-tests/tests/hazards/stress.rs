//! The stress run of a checked strategy (in a child process): four own-GIL subinterpreters, two
//! threads each, 10,000 create/bind/clone/send/drop operations per thread, handles crossing to
//! the sibling thread (received and used in the same interpreter) and to threads of other
//! interpreters (dropped there, so released through the owner's deferred-decref pool); then every
//! interpreter ends. No operation may fail, every deferred decref must be released or counted, and
//! the probe objects' reference counts must be back where they started. On a free-threaded build,
//! two more threads drive one interpreter's shared objects through the strategy at once.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Barrier, Mutex};

use interp_tests::FREE_THREADED;
use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::decref_stats;
use interpsafe::{Attached, Isolation, Strategy, SubInterpreter};
use pyo3_ffi as ffi;

use super::world::{within, Obs};

const INTERPRETERS: usize = 4;
const THREADS_PER_INTERPRETER: usize = 2;
const OPS_PER_THREAD: usize = 10_000;
const OPS_PER_ATTACH: usize = 100;

/// What one thread hands another.
enum Message<S: Strategy> {
    /// From the sibling thread of the same interpreter: received, bound and dropped there.
    Sent(S::Sent),
    /// From a thread of another interpreter: dropped by the receiver, in the wrong interpreter or
    /// with nothing attached, so released through the owner's pool.
    Foreign(S::Stored),
}

/// Failures, counted, with the first message kept.
#[derive(Default)]
struct Failures {
    count: AtomicUsize,
    first: Mutex<Option<String>>,
}

impl Failures {
    fn check<T>(&self, what: &str, r: Result<T, interpsafe::Error>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.count.fetch_add(1, Ordering::Relaxed);
                self.first.lock().unwrap().get_or_insert_with(|| format!("{what}: {e}"));
                None
            }
        }
    }
}

fn refcount(at: &Attached<'_>, name: &str) -> i64 {
    let expr = CString::new(format!("__import__('sys').getrefcount({name})")).unwrap();
    at.eval(&expr).unwrap().parse().unwrap()
}

/// One thread's work in interpreter `key`.
fn worker<S: Strategy>(
    key: interpsafe::InterpreterKey,
    sibling: &Sender<Message<S>>,
    foreign: &Sender<Message<S>>,
    inbox: &Receiver<Message<S>>,
    all_sent: &Barrier,
    failures: &Failures,
) {
    let use_inbox = |messages: Vec<Message<S>>| {
        let mut keep_for_later = Vec::new();
        within(key, |at| {
            S::enter(at, |s| {
                let mut foreign = 0;
                for m in messages {
                    match m {
                        Message::Sent(sent) => {
                            if let Some(h) = failures.check("receive", S::receive(s, sent)) {
                                failures.check("bind received", S::bind(s, &h).map(|_| ()));
                            }
                        }
                        Message::Foreign(stored) => {
                            // Every other one is dropped here, attached to the wrong
                            // interpreter; the rest after detaching, with nothing attached.
                            foreign += 1;
                            if foreign % 2 == 0 {
                                drop(stored);
                            } else {
                                keep_for_later.push(stored);
                            }
                        }
                    }
                }
            })
        });
        drop(keep_for_later);
    };
    for batch in 0..OPS_PER_THREAD / OPS_PER_ATTACH {
        within(key, |at| {
            S::enter(at, |s| {
                let Some(probe) = failures.check("eval", S::eval(s, c"stress_probe")) else {
                    return;
                };
                for k in 0..OPS_PER_ATTACH {
                    // create: a new reference to the shared probe, or a fresh list
                    let h = if k % 2 == 0 {
                        let Some(r) = failures.check("bind probe", S::bind(s, &probe)) else {
                            continue;
                        };
                        S::to_handle(s, r)
                    } else {
                        // SAFETY: attached (a scope exists); PyList_New returns a new reference
                        // owned by this interpreter, handed to the strategy.
                        unsafe {
                            S::adopt(s, NonNull::new(ffi::PyList_New(0)).expect("PyList_New"))
                        }
                    };
                    // bind
                    if failures.check("bind", S::bind(s, &h)).is_none() {
                        continue;
                    }
                    // clone, then send the clone
                    if let Some(c) = failures.check("clone", S::clone_handle(s, &h)) {
                        let to_other_interpreter = (batch * OPS_PER_ATTACH + k) % 4 == 3;
                        let sent = if to_other_interpreter {
                            foreign.send(Message::Foreign(S::store(s, c)))
                        } else {
                            sibling.send(Message::Sent(S::send(s, c)))
                        };
                        sent.expect("the receiving thread is alive");
                    }
                    // drop
                    drop(h);
                }
            })
        });
        use_inbox(inbox.try_iter().collect());
    }
    all_sent.wait();
    use_inbox(inbox.try_iter().collect());
}

/// Two threads attached to one interpreter drive the same objects through `S` at once (run on
/// free-threaded builds): clone, bind, append to one shared list, drop.
fn shared_objects<S: Strategy>(
    key: interpsafe::InterpreterKey,
    failures: &Failures,
    obs: &mut Obs,
) {
    const PER_THREAD: usize = 10_000;
    let before = within(key, |at| {
        at.exec(c"ft_probe = object()\nft_list = []").unwrap();
        refcount(at, "ft_probe")
    });
    let (probe, list) = within(key, |at| {
        S::enter(at, |s| {
            let p = S::eval(s, c"ft_probe").unwrap();
            let l = S::eval(s, c"ft_list").unwrap();
            let p2 = S::clone_handle(s, &p).unwrap();
            let l2 = S::clone_handle(s, &l).unwrap();
            ([S::send(s, p), S::send(s, p2)], [S::send(s, l), S::send(s, l2)])
        })
    });
    let start = Barrier::new(2);
    std::thread::scope(|sc| {
        for (p, l) in probe.into_iter().zip(list) {
            let start = &start;
            sc.spawn(move || {
                start.wait();
                within(key, |at| {
                    S::enter(at, |s| {
                        let (Some(p), Some(l)) = (
                            failures.check("receive", S::receive(s, p)),
                            failures.check("receive", S::receive(s, l)),
                        ) else {
                            return;
                        };
                        for _ in 0..PER_THREAD {
                            let Some(c) = failures.check("clone", S::clone_handle(s, &p)) else {
                                continue;
                            };
                            let (Some(item), Some(lr)) = (
                                failures.check("bind", S::bind(s, &c)),
                                failures.check("bind", S::bind(s, &l)),
                            ) else {
                                continue;
                            };
                            failures
                                .check("append", interpsafe::ops::list_append::<S>(s, lr, item));
                        }
                    })
                })
            });
        }
    });
    let (len, during, after) = within(key, |at| {
        let len: usize = at.eval(c"len(ft_list)").unwrap().parse().unwrap();
        let during = refcount(at, "ft_probe");
        at.exec(c"ft_list.clear()").unwrap();
        (len, during, refcount(at, "ft_probe"))
    });
    if len != 2 * PER_THREAD || during != before + len as i64 || after != before {
        obs.anomaly(format!(
            "shared-objects: list length {len} (want {}), probe refcount {before} -> {during} -> {after}",
            2 * PER_THREAD
        ));
    } else {
        obs.note(format!(
            "2 threads x {PER_THREAD} appends of one object to one list: refcounts exact"
        ));
    }
}

/// The whole stress run for `S`; returns what it saw.
pub fn run<S: Strategy>() -> Obs {
    interpsafe::initialize();
    let mut obs = Obs::default();
    let failures = Failures::default();
    let mut subs: Vec<SubInterpreter> = (0..INTERPRETERS)
        .map(|_| SubInterpreter::new(Isolation::OwnGil).expect("subinterpreter"))
        .collect();
    let keys: Vec<_> = subs.iter().map(|s| s.key()).collect();
    let before: Vec<i64> = keys
        .iter()
        .map(|&k| {
            within(k, |at| {
                at.exec(c"stress_probe = object()").unwrap();
                refcount(at, "stress_probe")
            })
        })
        .collect();
    let threads = INTERPRETERS * THREADS_PER_INTERPRETER;
    let (senders, inboxes): (Vec<Sender<Message<S>>>, Vec<_>) =
        (0..threads).map(|_| channel()).unzip();
    let all_sent = Barrier::new(threads);
    std::thread::scope(|sc| {
        for (t, inbox) in inboxes.into_iter().enumerate() {
            let key = keys[t / THREADS_PER_INTERPRETER];
            let sibling = senders[t ^ 1].clone();
            let foreign = senders[(t + THREADS_PER_INTERPRETER) % threads].clone();
            let (all_sent, failures) = (&all_sent, &failures);
            sc.spawn(move || worker::<S>(key, &sibling, &foreign, &inbox, all_sent, failures));
        }
    });
    drop(senders);
    // Every interpreter attached once more (draining its pool), then its probe's count.
    for (&key, &was) in keys.iter().zip(&before) {
        let now = within(key, |at| refcount(at, "stress_probe"));
        if now != was {
            obs.anomaly(format!("refcount: {}'s probe went from {was} to {now}", key.id));
        }
    }
    if FREE_THREADED {
        shared_objects::<S>(keys[0], &failures, &mut obs);
    }
    for sub in &mut subs {
        sub.end(None).expect("end");
    }
    within(main_interpreter(), |_| ());
    let stats = decref_stats();
    if !stats.balanced() || stats.stranded != 0 {
        obs.anomaly(format!("pool: out of balance after the run: {stats:?}"));
    }
    let failed = failures.count.load(Ordering::Relaxed);
    if failed > 0 {
        obs.anomaly(format!(
            "errors: {failed} operations failed, first: {}",
            failures.first.lock().unwrap().clone().unwrap_or_default()
        ));
    }
    if obs.anomalies.is_empty() {
        obs.safe(format!(
            "{INTERPRETERS} own-GIL interpreters x {THREADS_PER_INTERPRETER} threads x {OPS_PER_THREAD} \
             operations: no error, probe refcounts restored, pool balanced ({} deferred, {} released, \
             {} discarded)",
            stats.deferred_total, stats.released_total, stats.discarded_total
        ));
    }
    obs
}
