//! Unit tests of the registry with real threads (loom-tests checks the interleavings).

use super::*;
use std::sync::Arc;
use std::thread;

fn holder(name: &str) -> Holder {
    Holder { thread: name.to_string() }
}

#[test]
fn first_entry_registers_once() {
    let reg = Registry::new();
    let a = reg.observe(InterpreterId(3), 0x30);
    let b = reg.observe(InterpreterId(3), 0x30);
    assert!(a.first_entry);
    assert!(!b.first_entry);
    assert_eq!(a.key, b.key);
    assert_eq!(reg.status(a.key), Some(Status::Alive));
}

#[test]
fn fast_path_flag_turns_off_at_second_interpreter() {
    let reg = Registry::new();
    reg.observe(InterpreterId::MAIN, 1);
    assert!(reg.only_main_seen());
    reg.observe(InterpreterId(1), 2);
    assert!(!reg.only_main_seen());
}

#[test]
fn fast_owner_is_main_alone_and_follows_the_epoch() {
    let reg = Registry::new();
    assert_eq!(reg.fast_owner(), NO_FAST_OWNER, "nothing observed yet");
    let main0 = reg.observe(InterpreterId::MAIN, 1).key;
    assert_eq!(reg.fast_owner(), main0.pack());
    reg.ended(main0);
    assert_eq!(reg.fast_owner(), NO_FAST_OWNER, "main ended: its handles are dead");
    let main1 = reg.observe(InterpreterId::MAIN, 1).key;
    assert_eq!(main1.epoch, Epoch(1));
    assert_eq!(reg.fast_owner(), main1.pack(), "the new runtime's main takes the fast path");
    reg.observe(InterpreterId(1), 2);
    assert_eq!(reg.fast_owner(), NO_FAST_OWNER);
    reg.ended(main1);
    reg.observe(InterpreterId::MAIN, 1);
    assert_eq!(reg.fast_owner(), NO_FAST_OWNER, "a second interpreter was seen, for good");
}

#[test]
fn packed_keys_round_trip_and_never_equal_the_sentinel() {
    for (e, id) in [(0, 0), (0, 7), (3, 1 << 40), (65535, (1 << 48) - 2)] {
        let key = InterpreterKey { epoch: Epoch(e), id: InterpreterId(id) };
        assert_eq!(InterpreterKey::unpack(key.pack()), key);
        assert_ne!(key.pack(), NO_FAST_OWNER);
    }
}

#[test]
fn attach_returns_handle_and_refuses_after_end() {
    let reg = Registry::new();
    let key = reg.observe(InterpreterId(1), 0xabc).key;
    let (g, handle) = reg.attach(key, holder("a")).unwrap();
    assert_eq!(handle, 0xabc);
    reg.detach(key, g);
    reg.end(key, &holder("main"), Some(Duration::from_millis(10))).unwrap();
    assert_eq!(reg.attach(key, holder("a")), Err(AttachRefused::Ending(key)));
    reg.ended(key);
    assert_eq!(reg.attach(key, holder("a")), Err(AttachRefused::Ended(key)));
    let unknown = InterpreterKey { epoch: Epoch(0), id: InterpreterId(9) };
    assert_eq!(reg.attach(unknown, holder("a")), Err(AttachRefused::Unknown(unknown)));
}

#[test]
fn bounded_end_names_holders_and_leaves_interpreter_alive() {
    let reg = Registry::new();
    let key = reg.observe(InterpreterId(2), 1).key;
    let (_g, _) = reg.attach(key, holder("worker-7")).unwrap();
    let err = reg.end(key, &holder("main"), Some(Duration::from_millis(30))).unwrap_err();
    match &err {
        EndRefused::Busy { holders, .. } => assert_eq!(holders, &vec![holder("worker-7")]),
        other => panic!("expected Busy, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("interpreter 2") && msg.contains("worker-7"), "{msg}");
    assert_eq!(reg.status(key), Some(Status::Alive));
}

#[test]
fn end_refuses_a_caller_that_holds_a_guard() {
    let reg = Registry::new();
    let key = reg.observe(InterpreterId(2), 1).key;
    let _g = reg.attach(key, holder("me")).unwrap();
    assert!(matches!(reg.end(key, &holder("me"), None), Err(EndRefused::CallerHolds { .. })));
}

#[test]
fn end_waits_for_guard_release() {
    let reg = Arc::new(Registry::new());
    let key = reg.observe(InterpreterId(4), 1).key;
    let (g, _) = reg.attach(key, holder("t")).unwrap();
    let r2 = reg.clone();
    let ender = thread::spawn(move || r2.end(key, &holder("ender"), None));
    // The ender must be blocked while the guard is held.
    while reg.status(key) != Some(Status::Ending) {
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(20));
    assert!(!ender.is_finished());
    reg.detach(key, g);
    assert_eq!(ender.join().unwrap(), Ok(()));
}

#[test]
fn main_end_advances_epoch_and_reused_ids_get_new_keys() {
    let reg = Registry::new();
    let main0 = reg.observe(InterpreterId::MAIN, 1).key;
    let sub0 = reg.observe(InterpreterId(1), 2).key;
    reg.ended(main0);
    assert_eq!(reg.status(sub0), Some(Status::Ended));
    let sub1 = reg.observe(InterpreterId(1), 3);
    assert!(sub1.first_entry);
    assert_ne!(sub1.key, sub0);
    assert_eq!(sub1.key.epoch, Epoch(1));
    assert!(sub1.key.to_string().contains("epoch 1"));
}

#[test]
fn an_ended_subinterpreter_seen_again_is_not_registered_again() {
    let reg = Registry::new();
    let main = reg.observe(InterpreterId::MAIN, 1).key;
    let k = reg.observe(InterpreterId(5), 2).key;
    let other = reg.observe(InterpreterId(6), 3).key;
    reg.ended(k);
    // A finalizer running in 5 after its end was reported.
    let again = reg.observe(InterpreterId(5), 2);
    assert!(!again.first_entry && again.ended);
    assert_eq!(again.key, k);
    assert_eq!(reg.status(k), Some(Status::Ended));
    // Nothing else moved: no epoch change, the others stay alive.
    assert_eq!(reg.epoch(), Epoch(0));
    assert_eq!(reg.status(main), Some(Status::Alive));
    assert_eq!(reg.status(other), Some(Status::Alive));
    assert!(reg.attach(k, holder("t")).is_err());
}

#[test]
fn an_ended_main_seen_again_means_missed_reinitialisation() {
    let reg = Registry::new();
    let k = reg.observe(InterpreterId::MAIN, 1).key;
    // Main's end moves the epoch on; a main seen afterwards is the next runtime's.
    reg.ended(k);
    let again = reg.observe(InterpreterId::MAIN, 1);
    assert!(again.first_entry && !again.ended);
    assert_eq!(again.key.epoch, Epoch(1));
}
