//! The owner tag a checked handle carries: an [`InterpreterKey`] packed into one `u64`.
//!
//! The ID takes the low 48 bits and the runtime epoch the high 16, so a tagged handle is a
//! pointer plus one word (16 bytes, and `Option` of it too, through the pointer's niche). The
//! packing is exact below 2^48 interpreters per runtime and 2^16 runtime re-initialisations per
//! process; beyond that epochs wrap.

use interpsafe_protocol::{Epoch, InterpreterId, InterpreterKey};

/// An interpreter key packed into one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag(u64);

impl Tag {
    /// The owner of a handle made from a borrowed object that was used outside its interpreter
    /// (affine's blind spot, or a reference kept across a raw thread-state switch): nobody's.
    /// Every check refuses it and a drop leaks it, so such a handle is never used or released
    /// anywhere. Not the packed form of any key the registry hands out (that would need
    /// interpreter ID 2^48 - 1 in epoch 65535).
    pub const UNKNOWN: Tag = Tag(interpsafe_protocol::NO_FAST_OWNER);

    /// Packs `key`.
    #[inline]
    pub fn from_key(key: InterpreterKey) -> Self {
        Tag(key.pack())
    }

    /// Packs an epoch and a raw interpreter ID.
    #[inline]
    pub fn from_parts(epoch: Epoch, id: i64) -> Self {
        Tag::from_key(InterpreterKey { epoch, id: InterpreterId(id) })
    }

    /// The packed word.
    #[inline]
    pub(crate) fn raw(self) -> u64 {
        self.0
    }

    /// A tag from its packed word.
    #[inline]
    pub(crate) fn from_raw(raw: u64) -> Self {
        Tag(raw)
    }

    /// Unpacks the key.
    pub fn key(self) -> InterpreterKey {
        InterpreterKey::unpack(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        for (e, id) in [(0, 0), (0, 7), (3, 1 << 40), (65535, (1 << 48) - 1)] {
            let key = InterpreterKey { epoch: Epoch(e), id: InterpreterId(id) };
            assert_eq!(Tag::from_key(key).key(), key);
        }
        let a = InterpreterKey { epoch: Epoch(0), id: InterpreterId(1) };
        let b = InterpreterKey { epoch: Epoch(1), id: InterpreterId(1) };
        assert_ne!(Tag::from_key(a), Tag::from_key(b));
    }
}
