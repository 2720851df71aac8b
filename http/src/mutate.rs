//! Deterministic byte mutations for the tests that fuzz without cargo-fuzz (which needs a
//! nightly toolchain): the same seed gives the same inputs, so a failure reproduces.

/// An xorshift64 generator and the mutations the tests apply with it.
pub(crate) struct Mutator {
    state: u64,
    alphabet: &'static [u8],
}

impl Mutator {
    /// Mutations draw their new bytes from `alphabet`; `seed` must not be zero.
    pub(crate) fn new(seed: u64, alphabet: &'static [u8]) -> Self {
        Mutator {
            state: seed,
            alphabet,
        }
    }

    /// A number below `bound` (not zero).
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % bound as u64) as usize
    }

    /// Up to three edits of `bytes`: a byte replaced, a byte inserted, or the tail cut
    /// (never below `keep` bytes).
    pub(crate) fn mutate(&mut self, bytes: &mut Vec<u8>, keep: usize) {
        for _ in 0..self.below(4) {
            let at = self.below(bytes.len() + 1);
            let byte = self.alphabet[self.below(self.alphabet.len())];
            match self.below(3) {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at.max(keep)),
            }
        }
    }
}
