//! The pseudo-random streams of the unit tests: a xorshift generator gives
//! one seed per generated case, and an LCG started from that seed gives the
//! draws within the case (so a failing case is fixed by its seed).

/// One seed per generated case (xorshift64).
pub(crate) struct Cases(u64);

impl Cases {
    pub(crate) fn new(seed: u64) -> Cases {
        Cases(seed)
    }

    /// The seed of the next case.
    pub(crate) fn next_seed(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The draws within one case (an LCG from the case's seed).
pub(crate) struct Draws(u64);

impl Draws {
    pub(crate) fn new(seed: u64) -> Draws {
        Draws(seed)
    }

    /// The current state, without drawing.
    pub(crate) fn peek(&self) -> u64 {
        self.0
    }

    /// A draw below `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize % n
    }

    /// One of `items`.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}
