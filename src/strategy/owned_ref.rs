//! A borrowed object as a checked strategy hands it out: the object, and the interpreter it
//! belongs to.
//!
//! Every strategy's `Ref` used to be the bare [`ObjRef`], which any strategy's `bind` produces,
//! the baseline's and affine's unchecked ones included. A checked strategy's `to_handle` then
//! made a handle from whatever `ObjRef` it was given and tagged it with the scope's interpreter:
//! an object of A bound unchecked in B became a handle "owned" by B that every checked strategy
//! trusted (found by attack). An [`OwnedRef`] is distinct per strategy (the marker `M`), made
//! only by that strategy's own operations, and carries the owner the strategy established when
//! it handed it out, which is what `to_handle` and derived objects are tagged with.

use std::marker::PhantomData;

use crate::object::ObjRef;
use crate::tag::Tag;

/// A borrowed object handed out by strategy `M`, with the interpreter it belongs to.
#[derive(Debug)]
pub struct OwnedRef<'a, M> {
    obj: ObjRef<'a>,
    owner: Tag,
    _strategy: PhantomData<fn() -> M>,
}

impl<M> Clone for OwnedRef<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for OwnedRef<'_, M> {}

impl<'a, M> OwnedRef<'a, M> {
    /// Wraps `obj`, which belongs to `owner` ([`Tag::UNKNOWN`] if the strategy handed it out
    /// outside its owner).
    pub(crate) fn new(obj: ObjRef<'a>, owner: Tag) -> Self {
        OwnedRef { obj, owner, _strategy: PhantomData }
    }

    /// The object, for raw operations.
    pub fn obj(self) -> ObjRef<'a> {
        self.obj
    }

    /// The object's address.
    pub fn addr(self) -> usize {
        self.obj.addr()
    }

    /// The interpreter the object belongs to, as the strategy established it.
    pub fn owner(self) -> Tag {
        self.owner
    }
}

impl<'a, M> From<OwnedRef<'a, M>> for ObjRef<'a> {
    fn from(r: OwnedRef<'a, M>) -> ObjRef<'a> {
        r.obj
    }
}
