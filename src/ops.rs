//! Operations on objects reached through a strategy's borrowed references.
//!
//! These are the operations the benches and the hazard suite perform between binds: they take
//! the strategy's scope and borrowed references, so a branded strategy's brands must match here
//! too, and they return the strategy's handles.

use std::ffi::CStr;

use crate::object::{getattr_new, list_append as raw_list_append};
use crate::strategy::Strategy;
use crate::Error;

/// `getattr(obj, name)`, as a new handle.
pub fn getattr<'s, 'a, S: Strategy>(
    scope: &'a S::Scope<'s>,
    obj: S::Ref<'s, 'a>,
    name: &CStr,
) -> Result<S::Handle<'s>, Error> {
    // SAFETY: a borrowed reference exists only while the thread is attached to its interpreter.
    let attr = unsafe { getattr_new(S::as_obj(obj), name) }
        .map_err(|message| Error::Python { interpreter: S::key(scope), message })?;
    // SAFETY: getattr on `obj` returned a new reference, on this thread.
    Ok(unsafe { S::adopt_derived(scope, obj, attr) })
}

/// `list.append(item)`.
pub fn list_append<'s, 'a, S: Strategy>(
    scope: &'a S::Scope<'s>,
    list: S::Ref<'s, 'a>,
    item: S::Ref<'s, 'a>,
) -> Result<(), Error> {
    // SAFETY: as above; both references are of the same scope.
    unsafe { raw_list_append(S::as_obj(list), S::as_obj(item)) }
        .map_err(|message| Error::Python { interpreter: S::key(scope), message })
}
