//! Seeded random streams. Every stochastic function takes an explicit RNG; independent work
//! (chains, batch shards, plugin calls) gets its own stream of the same seed so results do not
//! depend on thread count or call order.

use rand::SeedableRng;

/// The random number generator used everywhere in bootflow.
pub type Rng = rand_chacha::ChaCha8Rng;

/// The generator for `(seed, stream)`: equal pairs give equal sequences, different streams of one
/// seed are independent.
pub fn stream(seed: u64, stream: u64) -> Rng {
    let mut r = Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Draws a fresh seed from `rng` (for handing randomness to a plugin or a parallel shard).
pub fn child_seed(rng: &mut Rng) -> u64 {
    use rand::RngCore;
    rng.next_u64()
}

/// Fills `out` with independent standard normal draws.
pub fn fill_normal(rng: &mut Rng, out: &mut [f64]) {
    use rand::Rng as _;
    for v in out {
        *v = rng.sample(rand_distr::StandardNormal);
    }
}
