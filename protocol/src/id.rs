//! Interpreter identity: CPython's interpreter ID plus the runtime epoch it was issued in.
//!
//! `PyInterpreterState_GetID` counts up from 0 (the main interpreter) and never reuses a value
//! within one runtime, but the counter restarts when the runtime is finalised and initialised
//! again. The epoch counts those re-initialisations, so an [`InterpreterKey`] names one interpreter
//! for the life of the process.

use std::fmt;

/// The value of `PyInterpreterState_GetID`: 0 is the main interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterpreterId(pub i64);

impl InterpreterId {
    /// The main interpreter's ID.
    pub const MAIN: InterpreterId = InterpreterId(0);

    /// True for the main interpreter.
    pub fn is_main(self) -> bool {
        self == Self::MAIN
    }
}

impl fmt::Display for InterpreterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interpreter {}", self.0)
    }
}

/// How many times the runtime has been finalised before this interpreter was seen (0 at first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

/// One interpreter for the life of the process: its ID and the runtime epoch of that ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterpreterKey {
    /// The runtime epoch the ID belongs to.
    pub epoch: Epoch,
    /// CPython's interpreter ID.
    pub id: InterpreterId,
}

/// How many low bits of a packed key hold the interpreter ID; the epoch takes the high 16.
pub const PACKED_ID_BITS: u32 = 48;
const PACKED_ID_MASK: u64 = (1 << PACKED_ID_BITS) - 1;

impl InterpreterKey {
    /// The key packed into one word: the ID in the low 48 bits, the epoch in the high 16. Exact
    /// below 2^48 interpreters per runtime and 2^16 runtime re-initialisations per process;
    /// beyond that epochs wrap.
    #[inline]
    pub const fn pack(self) -> u64 {
        (self.epoch.0 << PACKED_ID_BITS) | (self.id.0 as u64 & PACKED_ID_MASK)
    }

    /// The key a [`pack`](InterpreterKey::pack)ed word stands for.
    #[inline]
    pub const fn unpack(word: u64) -> Self {
        InterpreterKey {
            epoch: Epoch(word >> PACKED_ID_BITS),
            id: InterpreterId((word & PACKED_ID_MASK) as i64),
        }
    }
}

impl fmt::Display for InterpreterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch.0 == 0 {
            write!(f, "{}", self.id)
        } else {
            write!(f, "{} (runtime epoch {})", self.id, self.epoch.0)
        }
    }
}
