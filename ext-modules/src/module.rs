//! One multi-phase module written once over a [`Strategy`], instantiated per strategy by
//! [`variant!`].
//!
//! The model: CPython creates one module object per interpreter that imports the variant and runs
//! its exec slot ([`exec`]) attached there. Exec makes that interpreter's `Counter` type and
//! `Error` class and keeps them in module state ([`State`]) as the strategy's stored handles, so
//! they are traversed (`m_traverse`), cleared (`m_clear`) and released with the module
//! (`m_free`). `interned()` and `cached()` read the strategy's once-cells ([`Cells`]), kept in a
//! process static per variant as an extension author would keep a `PyOnceLock`: the checked
//! strategies key them by interpreter, the `unchecked` baseline shares one object with every
//! interpreter. Every function enters a scope of the strategy through
//! [`interpsafe::interpreter::attached_here`] (which registers an interpreter the toolkit did not
//! create on first entry), turns its borrowed arguments into the strategy's handles and binds
//! them before use. No Python object lives in a process-global except through a once-cell.

use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void, CStr};
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use interpsafe::pyo3_compat::ffi;
use interpsafe::{Error, Strategy};

use crate::counter;
use crate::entry::{entry, entry_int, new_ref, quiet, with_scope, Failure};
use crate::stored::{ModuleStrategy, StoredForm};

/// The string `interned()` returns.
pub const INTERNED: &CStr = c"interpsafe";

/// One variant: a strategy, and the names its module is imported under.
pub trait Variant: 'static {
    /// The strategy every handle and once-cell of the module goes through.
    type S: ModuleStrategy;
    /// The qualified name of the module's exception class, `<variant>.Error`.
    const ERROR: &'static CStr;
    /// The qualified name of the module's counter type, `<variant>.Counter`.
    const COUNTER: &'static CStr;
    /// The variant's once-cells (a process static per variant).
    fn cells() -> &'static Cells<Self::S>;
}

/// The once-cells behind `interned()` and `cached()`.
pub struct Cells<S: Strategy> {
    /// The interned string `"interpsafe"`.
    pub interned: S::Once,
    /// The list `cached()` returns.
    pub cached: S::Once,
}

impl<S: Strategy> Default for Cells<S> {
    fn default() -> Self {
        Cells { interned: S::Once::default(), cached: S::Once::default() }
    }
}

/// The module's state, in the memory CPython allocates zero-filled (`m_size`) before exec runs:
/// `ready` is false until exec has written `fields`, and `m_traverse`, `m_clear` and `m_free`
/// may run before that.
#[repr(C)]
pub struct State<S: Strategy> {
    ready: AtomicBool,
    fields: UnsafeCell<MaybeUninit<Fields<S>>>,
}

/// What exec makes, kept as the strategy's stored handles; `None` once cleared.
struct Fields<S: Strategy> {
    counter: Option<S::Stored>,
    error: Option<S::Stored>,
}

/// The `m_size` of a variant's module definition.
pub const fn state_size<S: Strategy>() -> ffi::Py_ssize_t {
    std::mem::size_of::<State<S>>() as ffi::Py_ssize_t
}

/// The state of `module`, or `None` if it has none.
///
/// # Safety
/// `module` must be a live module object of a variant of strategy `S`, and the returned borrow
/// must not outlive it.
unsafe fn state<'m, S: Strategy>(module: *mut ffi::PyObject) -> Option<&'m State<S>> {
    // SAFETY: `module` is a live module object (caller's contract), whose state is a `State<S>`
    // allocated by CPython (m_size), or NULL.
    unsafe { ffi::PyModule_GetState(module).cast::<State<S>>().as_ref() }
}

impl<S: Strategy> State<S> {
    /// The fields once exec has written them, for reading (module functions, `m_traverse`).
    ///
    /// # Safety
    /// The borrow must end before `m_clear` or `m_free` can run on this module: readers do not
    /// hold it across calls into Python (those run with the GIL held or the world stopped, so
    /// never beside a reader that is not in such a call).
    unsafe fn fields(&self) -> Option<&Fields<S>> {
        // Acquire pairs with exec's Release: a reader that sees `ready` sees the fields.
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: initialised once `ready` is set; shared borrows only (caller's contract keeps
        // the exclusive ones, `m_clear`'s and `m_free`'s, apart from them).
        Some(unsafe { (*self.fields.get()).assume_init_ref() })
    }

    /// The fields once exec has written them, for clearing.
    ///
    /// # Safety
    /// The caller must have exclusive access to the module: `m_clear` does (a collection runs
    /// with the interpreter's GIL held, or the world stopped on free-threaded builds, while no
    /// reader holds a borrow).
    #[allow(clippy::mut_from_ref)]
    unsafe fn fields_mut(&self) -> Option<&mut Fields<S>> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: initialised once `ready` is set; exclusive (caller's contract).
        Some(unsafe { (*self.fields.get()).assume_init_mut() })
    }
}

/// The `Py_mod_exec` slot: makes this interpreter's `Counter` type and `Error` class.
///
/// # Safety
/// CPython calls it once per module object, attached to the importing interpreter.
pub unsafe extern "C" fn exec<V: Variant>(module: *mut ffi::PyObject) -> c_int {
    entry_int(|| {
        let fields = with_scope::<V::S, _>(|scope| {
            // SAFETY: attached to the module's interpreter (exec runs there).
            let counter = new_ref(unsafe { counter::create(module, V::COUNTER) })?;
            // SAFETY: `create` returned a new reference made in this interpreter.
            let counter = V::S::store(scope, unsafe { V::S::adopt(scope, counter) });
            // SAFETY: attached; the name is a static C string; a new reference or NULL.
            let error = new_ref(unsafe {
                ffi::PyErr_NewException(
                    V::ERROR.as_ptr(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            })?;
            // SAFETY: a new reference made in this interpreter.
            let error = V::S::store(scope, unsafe { V::S::adopt(scope, error) });
            Ok(Fields::<V::S> { counter: Some(counter), error: Some(error) })
        })?;
        for (name, stored) in [(c"Counter", &fields.counter), (c"Error", &fields.error)] {
            let obj = stored.as_ref().map(StoredForm::object).unwrap_or(std::ptr::null_mut());
            // SAFETY: attached; `obj` is alive (the fields own a reference); the call takes its
            // own reference.
            if unsafe { ffi::PyModule_AddObjectRef(module, name.as_ptr(), obj) } < 0 {
                return Err(Failure::Raised);
            }
        }
        // SAFETY: CPython allocated the zero-filled state for this module (m_size > 0).
        let state = unsafe { ffi::PyModule_GetState(module) }.cast::<State<V::S>>();
        // SAFETY: the state is live and exec runs once per module, before any function of it
        // can be called: nothing else reads `fields` until `ready` is set.
        unsafe {
            (*(*state).fields.get()).write(fields);
            (*state).ready.store(true, Ordering::Release);
        }
        Ok(())
    })
}

/// `m_traverse`: reports the type and the class to the collector.
///
/// # Safety
/// CPython calls it during a collection, with `visit` and `arg` to pass on.
pub unsafe extern "C" fn traverse<V: Variant>(
    module: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    quiet(0, || {
        // SAFETY: a collection runs attached to the module's interpreter, with no function of
        // the module running meanwhile (GIL held, or the world stopped); CPython passes a live
        // module of this variant.
        let Some(fields) = (unsafe { state::<V::S>(module).and_then(|s| s.fields()) }) else {
            return 0;
        };
        for stored in [&fields.counter, &fields.error].into_iter().flatten() {
            // SAFETY: the object is alive (the state owns a reference); `visit` is CPython's.
            let status = unsafe { visit(stored.object(), arg) };
            if status != 0 {
                return status;
            }
        }
        0
    })
}

/// `m_clear`: releases the type and the class (the strategy's release, in this interpreter).
///
/// # Safety
/// CPython calls it attached to the module's interpreter, with nothing else using the module.
pub unsafe extern "C" fn clear<V: Variant>(module: *mut ffi::PyObject) -> c_int {
    quiet(0, || {
        // SAFETY: as for `traverse`, and exclusive: nothing else uses the module during a clear.
        if let Some(fields) = unsafe { state::<V::S>(module).and_then(|s| s.fields_mut()) } {
            drop(fields.counter.take());
            drop(fields.error.take());
        }
        0
    })
}

/// `m_free`: drops the state's fields when the module object is freed.
///
/// # Safety
/// CPython calls it once, when the module object is deallocated, attached.
pub unsafe extern "C" fn free<V: Variant>(module: *mut c_void) {
    quiet((), || {
        // SAFETY: CPython passes the module being freed (a live module of this variant until this
        // returns), and nothing else uses its state any more: the fields are dropped once, then
        // marked unready.
        unsafe {
            if let Some(state) = state::<V::S>(module.cast()) {
                if state.ready.swap(false, Ordering::AcqRel) {
                    (*state.fields.get()).assume_init_drop();
                }
            }
        }
    })
}

/// A handle of the strategy to a borrowed argument: a new strong reference, adopted in the scope.
///
/// # Safety
/// `obj` must be a live object of the scope's interpreter (an argument CPython passed).
unsafe fn argument<'s, S: Strategy>(
    scope: &S::Scope<'s>,
    obj: *mut ffi::PyObject,
) -> Result<S::Handle<'s>, Failure> {
    let obj = NonNull::new(obj).ok_or(Failure::Raised)?;
    // SAFETY: attached (a scope exists); the incref makes the reference the handle adopts.
    unsafe {
        ffi::Py_INCREF(obj.as_ptr());
        Ok(S::adopt(scope, obj))
    }
}

/// A new reference to a bound object, to return to CPython.
fn returned<'s: 'a, 'a, S: Strategy>(r: S::Ref<'s, 'a>) -> *mut ffi::PyObject {
    let obj = S::as_obj(r).as_ptr();
    // SAFETY: the bound object is alive and belongs to the attached interpreter (the bind's
    // check, for the checked strategies).
    unsafe { ffi::Py_INCREF(obj) };
    obj
}

/// `identity(obj)`: returns `obj`, through a handle of the strategy.
///
/// # Safety
/// CPython calls it attached, with a module of this variant and one argument (`METH_O`).
pub unsafe extern "C" fn identity<V: Variant>(
    _module: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    entry(|| {
        with_scope::<V::S, _>(|scope| {
            // SAFETY: `obj` is CPython's live argument, in this interpreter.
            let handle = unsafe { argument::<V::S>(scope, obj) }?;
            let obj = returned::<V::S>(V::S::bind(scope, &handle)?);
            Ok(obj)
        })
    })
}

/// `raise_error(msg)`: raises the module's `Error(msg)`.
///
/// # Safety
/// As [`identity`].
pub unsafe extern "C" fn raise_error<V: Variant>(
    module: *mut ffi::PyObject,
    msg: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    entry(|| {
        with_scope::<V::S, _>(|scope| {
            // SAFETY: CPython passes a live module of this variant, attached; the borrow ends with
            // the duplicate, before any call into Python.
            let kept = unsafe { state::<V::S>(module).and_then(|s| s.fields()) }
                .and_then(|f| f.error.as_ref());
            let Some(kept) = kept else {
                // SAFETY: attached; a static type and message.
                unsafe {
                    ffi::PyErr_SetString(ffi::PyExc_SystemError, c"module state cleared".as_ptr())
                };
                return Err(Failure::Raised);
            };
            let stored = kept.duplicate()?;
            let class = V::S::load(scope, stored)?;
            let class = V::S::bind(scope, &class)?;
            // SAFETY: `msg` is CPython's live argument; pass it through another handle too.
            let msg = unsafe { argument::<V::S>(scope, msg) }?;
            let msg = V::S::bind(scope, &msg)?;
            // SAFETY: attached; `class` is this interpreter's exception class (bound, checked).
            unsafe {
                ffi::PyErr_SetObject(V::S::as_obj(class).as_ptr(), V::S::as_obj(msg).as_ptr())
            };
            Err(Failure::Raised)
        })
    })
}

/// `interned()`: the interned `"interpsafe"` from the variant's once-cell.
///
/// # Safety
/// As [`identity`], `METH_NOARGS`.
pub unsafe extern "C" fn interned<V: Variant>(
    _module: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: attached (`from_once` calls it in a scope); a new reference or NULL.
    from_once::<V>(
        |c| &c.interned,
        || unsafe { ffi::PyUnicode_InternFromString(INTERNED.as_ptr()) },
    )
}

/// `cached()`: a list made once (per interpreter, for the checked strategies).
///
/// # Safety
/// As [`identity`], `METH_NOARGS`.
pub unsafe extern "C" fn cached<V: Variant>(
    _module: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: attached (`from_once` calls it in a scope); a new reference or NULL.
    from_once::<V>(|c| &c.cached, || unsafe { ffi::PyList_New(0) })
}

/// The object of one of the variant's once-cells (`pick`), made by `make` (a new reference or
/// `NULL` with an exception set, called attached) the first time it is asked for (in this
/// interpreter, for the checked strategies).
fn from_once<V: Variant>(
    pick: fn(&Cells<V::S>) -> &<V::S as Strategy>::Once,
    make: fn() -> *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    entry(|| {
        with_scope::<V::S, _>(|scope| {
            let r = V::S::once(pick(V::cells()), scope, |scope| made::<V::S>(scope, make()))?;
            Ok(returned::<V::S>(r))
        })
    })
}

/// A once-cell initialiser's object: adopted, or the Python error left set (reported as
/// [`Error::Python`], which [`Failure`] raises as the pending exception).
fn made<'s, S: Strategy>(
    scope: &S::Scope<'s>,
    obj: *mut ffi::PyObject,
) -> Result<S::Handle<'s>, Error> {
    match NonNull::new(obj) {
        // SAFETY: a new reference made in the scope's interpreter by the caller.
        Some(obj) => Ok(unsafe { S::adopt(scope, obj) }),
        None => Err(Error::Python {
            interpreter: S::key(scope),
            message: "see the pending exception".into(),
        }),
    }
}

/// `call(f, x)`: returns `f(x)`.
///
/// # Safety
/// As [`identity`], `METH_FASTCALL` with `nargs` arguments at `args`.
pub unsafe extern "C" fn call<V: Variant>(
    _module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    entry(|| {
        if nargs != 2 {
            // SAFETY: attached; static type and message.
            unsafe {
                ffi::PyErr_SetString(ffi::PyExc_TypeError, c"call(f, x) takes 2 arguments".as_ptr())
            };
            return Err(Failure::Raised);
        }
        with_scope::<V::S, _>(|scope| {
            // SAFETY: CPython passes `nargs` (2) live arguments at `args`, in this interpreter.
            let (f, x) = unsafe {
                (argument::<V::S>(scope, *args)?, argument::<V::S>(scope, *args.add(1))?)
            };
            let (f, x) = (V::S::bind(scope, &f)?, V::S::bind(scope, &x)?);
            // SAFETY: attached; both objects bound (checked) in this interpreter; a new
            // reference or NULL with the callback's exception set.
            let out = new_ref(unsafe {
                ffi::PyObject_CallOneArg(V::S::as_obj(f).as_ptr(), V::S::as_obj(x).as_ptr())
            })?;
            // SAFETY: a new reference made on this thread by calling `f`.
            let out = unsafe { V::S::adopt_derived(scope, f, out) };
            let obj = returned::<V::S>(V::S::bind(scope, &out)?);
            Ok(obj)
        })
    })
}

/// Turns a `&'static str` ending in NUL into a `&'static CStr` at compile time.
pub const fn cstr(s: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(s.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("not a NUL-terminated string without inner NULs"),
    }
}

/// Declares one variant: a marker type implementing [`Variant`] for `$strategy`, its module
/// definition (methods, slots, state) and the exported `PyInit_<name>`.
macro_rules! variant {
    ($init:ident, $marker:ident, $strategy:ty, $name:literal) => {
        #[doc = concat!("The `", $name, "` module: the [`", stringify!($strategy), "`] strategy.")]
        #[derive(Debug)]
        pub enum $marker {}

        impl $crate::module::Variant for $marker {
            type S = $strategy;
            const ERROR: &'static ::std::ffi::CStr = $crate::module::cstr(concat!($name, ".Error\0"));
            const COUNTER: &'static ::std::ffi::CStr =
                $crate::module::cstr(concat!($name, ".Counter\0"));
            fn cells() -> &'static $crate::module::Cells<$strategy> {
                static CELLS: ::std::sync::OnceLock<$crate::module::Cells<$strategy>> =
                    ::std::sync::OnceLock::new();
                CELLS.get_or_init(Default::default)
            }
        }

        #[doc = concat!("The `", $name, "` module's init function (multi-phase: returns its definition).")]
        #[no_mangle]
        pub extern "C" fn $init() -> *mut ::interpsafe::pyo3_compat::ffi::PyObject {
            use ::interpsafe::pyo3_compat::ffi;
            use $crate::module as m;
            static mut METHODS: [ffi::PyMethodDef; 6] = m::methods::<$marker>();
            static mut SLOTS: [ffi::PyModuleDef_Slot; m::SLOT_COUNT] = m::slots::<$marker>();
            static mut DEF: ffi::PyModuleDef = m::definition::<$marker>(
                m::cstr(concat!($name, "\0")),
                // Only the addresses are taken; CPython reads the tables while it imports.
                ::std::ptr::addr_of_mut!(METHODS).cast(),
                ::std::ptr::addr_of_mut!(SLOTS).cast(),
            );
            // SAFETY: DEF is a static definition that CPython initialises once
            // (PyModuleDef_Init is idempotent) and only reads afterwards; multi-phase init
            // returns the definition itself, for every interpreter that imports the module.
            unsafe { ffi::PyModuleDef_Init(::std::ptr::addr_of_mut!(DEF)) }
        }
    };
}
pub(crate) use variant;

/// The module functions of variant `V`.
pub const fn methods<V: Variant>() -> [ffi::PyMethodDef; 6] {
    [
        ffi::PyMethodDef {
            ml_name: c"identity".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: identity::<V> },
            ml_flags: ffi::METH_O,
            ml_doc: c"identity(obj): returns obj.".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"raise_error".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: raise_error::<V> },
            ml_flags: ffi::METH_O,
            ml_doc: c"raise_error(msg): raises Error(msg).".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"interned".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: interned::<V> },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"interned(): the interned str 'interpsafe', from a module-level cache."
                .as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"cached".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: cached::<V> },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"cached(): a list made once per interpreter.".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"call".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunctionFast: call::<V> },
            ml_flags: ffi::METH_FASTCALL,
            ml_doc: c"call(f, x): returns f(x).".as_ptr(),
        },
        ffi::PyMethodDef::zeroed(),
    ]
}

/// How many module slots a definition has: exec, multiple interpreters, (3.13+) GIL, the end.
pub const SLOT_COUNT: usize = 3 + cfg!(Py_3_13) as usize;

/// The module slots of variant `V`: exec, per-interpreter GIL supported, GIL not used.
pub const fn slots<V: Variant>() -> [ffi::PyModuleDef_Slot; SLOT_COUNT] {
    [
        ffi::PyModuleDef_Slot { slot: ffi::Py_mod_exec, value: exec::<V> as *mut _ },
        ffi::PyModuleDef_Slot {
            slot: ffi::Py_mod_multiple_interpreters,
            value: ffi::Py_MOD_PER_INTERPRETER_GIL_SUPPORTED,
        },
        #[cfg(Py_3_13)]
        ffi::PyModuleDef_Slot { slot: ffi::Py_mod_gil, value: ffi::Py_MOD_GIL_NOT_USED },
        ffi::PyModuleDef_Slot { slot: 0, value: std::ptr::null_mut() },
    ]
}

/// The module definition of variant `V`.
pub const fn definition<V: Variant>(
    name: &'static CStr,
    methods: *mut ffi::PyMethodDef,
    slots: *mut ffi::PyModuleDef_Slot,
) -> ffi::PyModuleDef {
    ffi::PyModuleDef {
        m_base: ffi::PyModuleDef_HEAD_INIT,
        m_name: name.as_ptr(),
        m_doc: c"interpsafe's extension module over one strategy (see interpsafe-ext).".as_ptr(),
        m_size: state_size::<V::S>(),
        m_methods: methods,
        m_slots: slots,
        m_traverse: Some(traverse::<V>),
        m_clear: Some(clear::<V>),
        m_free: Some(free::<V>),
    }
}
