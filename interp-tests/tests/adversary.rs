//! Regression tests for the ways the checked strategies were broken from safe code, each written
//! as the attack, with what must happen instead. One test per door a handle can use to enter
//! stored state with the wrong owner.

use std::cell::RefCell;

use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Affine, AffineHandle, Branded, Scoped, Tagged, TaggedHandle};
use interpsafe::{attach, Error, Isolation, Strategy, SubInterpreter};

/// `id(expr)` evaluated in the attached interpreter.
fn id_in(at: &interpsafe::Attached<'_>, expr: &str) -> usize {
    let code = std::ffi::CString::new(format!("id({expr})")).unwrap();
    at.eval(&code).unwrap().parse().unwrap()
}

/// A handle made in `sub`, in its stored form, carried out of it.
fn stored_in<S: Strategy>(sub: &SubInterpreter, expr: &'static std::ffi::CStr) -> S::Stored {
    attach(sub.key(), |at| S::enter(at, |scope| S::store(scope, S::eval(scope, expr).unwrap())))
        .unwrap()
}

/// A once-cell's initialiser returns a handle of another interpreter: the cell must refuse it
/// (it would otherwise hand the object out, unowned, to every later reader in main, past the
/// owner's end), stay empty, and accept a handle of its own interpreter afterwards.
fn once_cell_refuses_a_foreign_initial_value<S: Strategy>(sub: &SubInterpreter) {
    let main = main_interpreter();
    let cell: &'static S::Once = Box::leak(Box::default());
    let foreign = stored_in::<S>(sub, c"['made in sub', 1, 2]");
    attach(main, move |at| {
        at.exec(c"main_list = ['made in main']").unwrap();
        S::enter(at, |scope| {
            let refused = S::once(cell, scope, |s| S::load(s, foreign)).map(|_| ());
            match refused {
                Err(Error::CrossInterpreter { owner, .. }) => assert_eq!(owner, sub.key()),
                other => panic!("{}: a foreign initial value was not refused: {other:?}", S::NAME),
            }
            let own = S::as_obj(S::once(cell, scope, |s| S::eval(s, c"main_list")).unwrap());
            assert_eq!(own.addr(), id_in(at, "main_list"), "{}", S::NAME);
        })
    })
    .unwrap();
}

#[test]
fn once_cells_refuse_foreign_initial_values() {
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    once_cell_refuses_a_foreign_initial_value::<Tagged>(&sub);
    once_cell_refuses_a_foreign_initial_value::<Scoped>(&sub);
    once_cell_refuses_a_foreign_initial_value::<Branded>(&sub);
    once_cell_refuses_a_foreign_initial_value::<Affine>(&sub);
}

/// The tagged reproduction as reported: the initialiser returns a handle captured from the
/// subinterpreter, not one loaded through the strategy.
#[test]
fn tagged_once_cell_refuses_a_captured_foreign_handle() {
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let cell: &'static interpsafe::strategy::TaggedOnce = Box::leak(Box::default());
    let list: TaggedHandle = stored_in::<Tagged>(&sub, c"['made in sub', 1, 2]");
    attach(main_interpreter(), move |at| {
        Tagged::enter(at, |s| {
            assert!(Tagged::bind(s, &list).is_err(), "bind must refuse the foreign handle");
            let got = Tagged::once(cell, s, |_| Ok(list)).map(|_| ());
            assert!(matches!(got, Err(Error::CrossInterpreter { .. })), "{got:?}");
        })
    })
    .unwrap();
}

/// Shared objects are nobody's: a once-cell may be filled with `None` made in another
/// interpreter (hazard H7: no false positive at the new door either).
#[test]
fn once_cells_accept_shared_objects_from_anywhere() {
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let cell: &'static interpsafe::strategy::TaggedOnce = Box::leak(Box::default());
    let none = stored_in::<Tagged>(&sub, c"None");
    attach(main_interpreter(), move |at| {
        Tagged::enter(at, |s| {
            let got = Tagged::once(cell, s, |_| Ok(none)).unwrap();
            assert_eq!(got.addr(), id_in(at, "None"));
        })
    })
    .unwrap();
}

thread_local! {
    /// Where an attacker parks an affine handle: it is `'static`, so a thread-local can keep it
    /// while the thread moves to another interpreter.
    static PARKED: RefCell<Option<AffineHandle>> = const { RefCell::new(None) };
}

/// An affine handle made in main, parked in a thread-local, and taken out in a scope of the
/// subinterpreter on the same thread. `store` there must keep main as the owner (it used to
/// take the storing scope's interpreter), so every strategy that loads it refuses it in the sub.
#[test]
fn affine_store_keeps_the_owner_it_was_made_in() {
    let main = main_interpreter();
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let sub_key = sub.key();
    attach(main, |at| {
        Affine::enter(at, |scope| {
            let h = Affine::eval(scope, c"['made in main']").unwrap();
            assert_eq!(h.owner(), main);
            PARKED.with(|p| *p.borrow_mut() = Some(h));
        });
        attach(sub_key, |at| {
            let stored = Affine::enter(at, |scope| {
                let h = PARKED.with(|p| p.borrow_mut().take()).unwrap();
                Affine::store(scope, h)
            });
            assert_eq!(stored.owner(), main, "store laundered main's object into the sub");
            Tagged::enter(at, |scope| {
                let refused = Tagged::bind(scope, &stored).map(|_| ());
                assert!(matches!(refused, Err(Error::CrossInterpreter { .. })), "{refused:?}");
            });
            let refused = Branded::enter(at, |scope| Branded::load(scope, stored).map(|_| ()));
            assert!(matches!(refused, Err(Error::CrossInterpreter { .. })), "{refused:?}");
        })
        .unwrap();
    })
    .unwrap();
}

/// The same thread-local route through `send`: the transfer carries the owner the handle was
/// made in, so `receive` in the sub refuses it.
#[test]
fn affine_send_keeps_the_owner_it_was_made_in() {
    let main = main_interpreter();
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let sub_key = sub.key();
    attach(main, |at| {
        Affine::enter(at, |scope| {
            PARKED.with(|p| *p.borrow_mut() = Some(Affine::eval(scope, c"object()").unwrap()));
        });
        attach(sub_key, |at| {
            Affine::enter(at, |scope| {
                let h = PARKED.with(|p| p.borrow_mut().take()).unwrap();
                let sent = Affine::send(scope, h);
                let refused = Affine::receive(scope, sent).map(|_| ());
                assert!(matches!(refused, Err(Error::CrossInterpreter { .. })), "{refused:?}");
            });
        })
        .unwrap();
    })
    .unwrap();
}

/// Affine's blind spot, then a door: a kept handle of main is bound (unchecked, by design) in a
/// scope of the subinterpreter, and a new handle is made from that reference, by `to_handle` or
/// by an operation on it (`getattr`). Those used to be tagged with the sub and trusted by every
/// checked strategy; now they belong to nobody: refused everywhere, and leaked, never released.
#[test]
fn handles_made_in_affines_blind_spot_belong_to_nobody() {
    let main = main_interpreter();
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let sub_key = sub.key();
    attach(main, |at| {
        at.exec(c"kept_list = ['made in main']").unwrap();
        Affine::enter(at, |scope| {
            PARKED.with(|p| *p.borrow_mut() = Some(Affine::eval(scope, c"kept_list").unwrap()));
        });
        let stored: Vec<TaggedHandle> = attach(sub_key, |at| {
            Affine::enter(at, |scope| {
                let kept = PARKED.with(|p| p.borrow_mut().take()).unwrap();
                let r =
                    Affine::bind(scope, &kept).expect("affine binds unchecked (its blind spot)");
                let made = Affine::to_handle(scope, r);
                let derived = interpsafe::ops::getattr::<Affine>(scope, r, c"append").unwrap();
                let out = vec![Affine::store(scope, made), Affine::store(scope, derived)];
                PARKED.with(|p| *p.borrow_mut() = Some(kept));
                out
            })
        })
        .unwrap();
        for h in &stored {
            assert_eq!(h.owner(), interpsafe::tag::Tag::UNKNOWN.key());
        }
        attach(sub_key, |at| {
            Tagged::enter(at, |scope| {
                for h in &stored {
                    let refused = Tagged::bind(scope, h).map(|_| ());
                    assert!(matches!(refused, Err(Error::OwnerUnknown { .. })), "{refused:?}");
                }
            })
        })
        .unwrap();
        Tagged::enter(at, |scope| {
            for h in &stored {
                let refused = Tagged::bind(scope, h).map(|_| ());
                assert!(matches!(refused, Err(Error::OwnerUnknown { .. })), "{refused:?}");
            }
        });
        drop(stored);
        // The kept handle goes home: dropped in main, its owner.
        Affine::enter(at, |_| drop(PARKED.with(|p| p.borrow_mut().take())));
    })
    .unwrap();
}

/// The same door through `SharedBytes`: it takes a strategy's reference and the owner that
/// strategy established, so a reference from affine's blind spot, or from the baseline (which
/// records no owners), is refused.
#[test]
fn shared_bytes_refuse_references_without_a_known_owner() {
    use interpsafe::share::SharedBytes;
    use interpsafe::strategy::Unchecked;
    let main = main_interpreter();
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let sub_key = sub.key();
    attach(main, |at| {
        Affine::enter(at, |scope| {
            PARKED.with(|p| *p.borrow_mut() = Some(Affine::eval(scope, c"b'main bytes'").unwrap()));
        });
        attach(sub_key, |at| {
            Affine::enter(at, |scope| {
                let kept = PARKED.with(|p| p.borrow_mut().take()).unwrap();
                let r = Affine::bind(scope, &kept).unwrap();
                let refused = SharedBytes::new::<Affine>(scope, r).map(|_| ());
                assert!(matches!(refused, Err(Error::OwnerUnknown { .. })), "{refused:?}");
                PARKED.with(|p| *p.borrow_mut() = Some(kept));
            });
            Unchecked::enter(at, |scope| {
                let h = Unchecked::eval(scope, c"b'sub bytes'").unwrap();
                let refused =
                    SharedBytes::new::<Unchecked>(scope, Unchecked::bind(scope, &h).unwrap())
                        .map(|_| ());
                assert!(matches!(refused, Err(Error::OwnerUnknown { .. })), "{refused:?}");
            });
        })
        .unwrap();
        Affine::enter(at, |_| drop(PARKED.with(|p| p.borrow_mut().take())));
    })
    .unwrap();
}
