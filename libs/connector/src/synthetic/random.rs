//! A tiny seeded generator (SplitMix64): the same seed gives the same
//! region on every machine and every version of our dependencies, which a
//! general-purpose RNG does not promise.

/// SplitMix64 state.
#[derive(Debug, Clone)]
pub(crate) struct Random(u64);

impl Random {
    /// A generator for one part of the region (a person, an organisation)
    /// that does not depend on how many numbers other parts drew.
    pub(crate) fn derive(seed: u64, stream: u64) -> Self {
        let mut mixer = Self(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Self(mixer.next_u64())
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`0` when `bound` is 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for synthetic data, and fast.
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    pub(crate) fn between(&mut self, low: i64, high: i64) -> i64 {
        let span = high.saturating_sub(low).max(0) as u64;
        low.saturating_add(self.below(span.saturating_add(1)) as i64)
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One item of a non-empty slice (the first for an empty one is never
    /// asked for: callers pass constant tables).
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = self.below(items.len() as u64) as usize;
        &items[index.min(items.len().saturating_sub(1))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let mut first = Random::derive(7, 0);
        let mut second = Random::derive(7, 0);
        for _ in 0..100 {
            assert_eq!(first.next_u64(), second.next_u64());
        }
        assert_ne!(
            Random::derive(7, 1).next_u64(),
            Random::derive(7, 2).next_u64()
        );
    }

    #[test]
    fn bounds_are_respected() {
        let mut random = Random::derive(1, 0);
        for _ in 0..10_000 {
            assert!(random.below(10) < 10);
            let value = random.between(-5, 5);
            assert!((-5..=5).contains(&value));
        }
        assert_eq!(random.below(0), 0);
    }
}
