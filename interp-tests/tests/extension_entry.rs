//! `attached_here`: toolkit code entered from a thread that is already attached, as an extension
//! module's functions are (CPython attached the thread; the toolkit did not): the interpreter is
//! registered on first entry, and a scope entered there keys once-cells by that interpreter.
//! The end-to-end case (modules imported by Python into interpreters Python created) is
//! `ext-modules/tests`.

use std::sync::OnceLock;

use interpsafe::interpreter::{attached_here, main_interpreter};
use interpsafe::strategy::{Tagged, TaggedOnce};
use interpsafe::{attach, Isolation, Strategy, SubInterpreter};

#[test]
fn a_thread_attached_to_nothing_gets_none() {
    main_interpreter();
    let seen = std::thread::spawn(|| attached_here(|here| here.key())).join().unwrap();
    assert_eq!(seen, None);
}

#[test]
fn an_attached_thread_enters_its_own_interpreter() {
    let main = main_interpreter();
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    for key in [main, sub.key()] {
        let seen = attach(key, |_| attached_here(|here| here.key())).unwrap();
        assert_eq!(seen, Some(key));
    }
}

/// A once-cell read through a scope entered with `attached_here` holds one object per
/// interpreter: the same one on every read in an interpreter, another in the next one.
#[test]
fn once_cells_read_through_it_are_per_interpreter() {
    static CELL: OnceLock<TaggedOnce> = OnceLock::new();
    let cell = CELL.get_or_init(TaggedOnce::default);
    let read = |key| {
        attach(key, |_| {
            attached_here(|here| {
                Tagged::enter(here, |scope| {
                    let list = Tagged::once(cell, scope, |s| Tagged::eval(s, c"[]"))?;
                    Ok::<_, interpsafe::Error>(Tagged::as_obj(list).addr())
                })
            })
        })
        .unwrap()
        .unwrap()
        .unwrap()
    };
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::SharedGil).unwrap();
    let (in_a, in_b) = (read(a.key()), read(b.key()));
    assert_eq!(read(a.key()), in_a);
    assert_eq!(read(b.key()), in_b);
    assert_ne!(in_a, in_b);
}
