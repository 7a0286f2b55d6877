//! The interpreter model: interpreter keys, own versus shared GIL, attaching from any thread
//! through a guard, the runtime's shared immortal objects, and data (not handles) crossing
//! between interpreters.

use interpsafe::interpreter::main_interpreter;
use interpsafe::share::Shareable;
use interpsafe::strategy::Tagged;
use interpsafe::{attach, Error, InterpreterGuard, Isolation, Strategy, SubInterpreter};

/// Runs the example.
pub fn main() -> Result<(), Error> {
    interpsafe::initialize();
    let main = main_interpreter();
    assert!(main.id.is_main());

    // Interpreter IDs count up and are never reused while the runtime lives; a key adds the
    // runtime epoch, so a key names one interpreter for the life of the process.
    let own = SubInterpreter::new(Isolation::OwnGil)?;
    let legacy = SubInterpreter::new(Isolation::SharedGil)?;
    assert!(main.id < own.key().id && own.key().id < legacy.key().id);
    println!("{main}, {} (own GIL), {} (shared GIL)", own.key(), legacy.key());

    // PEP 788's contract, emulated: a guard keeps `own` from ending while it is held, and any
    // thread (here a fresh one, which PyGILState_Ensure would put in main) attaches through it.
    let guard = InterpreterGuard::new(own.key())?;
    let landed = std::thread::spawn(move || guard.attach(|at| at.key()))
        .join()
        .expect("the attaching thread panicked")?;
    assert_eq!(landed, own.key());

    // Handles made in `own`: one to `None` (a runtime singleton every interpreter shares) and
    // one to a list (an object of `own` alone).
    let (none, list) = attach(own.key(), |at| {
        Tagged::enter(at, |scope| -> Result<_, Error> {
            let none = Tagged::store(scope, Tagged::eval(scope, c"None")?);
            let list = Tagged::store(scope, Tagged::eval(scope, c"['made', 'in', 'own']")?);
            Ok((none, list))
        })
    })??;
    // In `legacy`, the shared object is usable; the list is refused, naming both interpreters.
    let refused = attach(legacy.key(), move |at| {
        Tagged::enter(at, |scope| -> Result<String, Error> {
            let none = Tagged::load(scope, none)?;
            Tagged::bind(scope, &none)?;
            let list = Tagged::load(scope, list)?;
            let error = Tagged::bind(scope, &list).expect_err("a list of `own` is foreign here");
            // Dropping `list` here is safe: the release is deferred to `own`'s queue.
            Ok(error.to_string())
        })
    })??;
    println!("{refused}");

    // What may cross is data: PEP 734's shareable values are read out in one interpreter and
    // re-created in the other.
    let value = attach(own.key(), |at| {
        Tagged::enter(at, |scope| -> Result<Shareable, Error> {
            let tuple = Tagged::eval(scope, c"('text', b'bytes', None, True)")?;
            Shareable::from_object(Tagged::as_obj(Tagged::bind(scope, &tuple)?))
        })
    })??;
    let copied = value.clone();
    let round_trip = attach(main, move |at| {
        Tagged::enter(at, |scope| -> Result<Shareable, Error> {
            let made_here = copied.to_handle::<Tagged>(scope)?;
            Shareable::from_object(Tagged::as_obj(Tagged::bind(scope, &made_here)?))
        })
    })??;
    assert_eq!(round_trip, value);
    Ok(())
}
