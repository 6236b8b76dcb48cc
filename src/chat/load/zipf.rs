//! Zipf-distributed choice of a thread: a few threads get most of the traffic, as in any
//! chat service (Discord's "large public servers" versus everyone else).

use rand::Rng;

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// Cumulative probabilities, ending at 1.0.
    cdf: Vec<f64>,
}

impl Zipf {
    /// A distribution over `n` items (at least one) with exponent `s` (0 = uniform).
    pub fn new(n: usize, s: f64) -> Zipf {
        let weights: Vec<f64> = (1..=n.max(1)).map(|k| 1.0 / (k as f64).powf(s)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Zipf { cdf }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }

    /// `k` distinct ranks (fewer if there are fewer items), most popular likeliest.
    pub fn sample_distinct(&self, rng: &mut impl Rng, k: usize) -> Vec<usize> {
        let k = k.min(self.cdf.len());
        let mut out = Vec::with_capacity(k);
        // Rejection is fine: k is small next to n, and the fallback scan ends it anyway.
        for _ in 0..k * 20 {
            if out.len() == k {
                break;
            }
            let r = self.sample(rng);
            if !out.contains(&r) {
                out.push(r);
            }
        }
        let mut r = 0;
        while out.len() < k {
            if !out.contains(&r) {
                out.push(r);
            }
            r += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Zipf;
    use rand::SeedableRng;

    #[test]
    fn skewed_towards_the_first_ranks_and_distinct_when_asked() {
        let z = Zipf::new(100, 1.0);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counts = [0usize; 100];
        for _ in 0..20_000 {
            counts[z.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[9] && counts[9] > counts[99]);
        assert!(
            counts[0] > 2_000,
            "rank 1 takes ~19% at s = 1: {}",
            counts[0]
        );
        let d = z.sample_distinct(&mut rng, 3);
        assert_eq!(d.len(), 3);
        assert!(d[0] != d[1] && d[1] != d[2] && d[0] != d[2]);
        assert_eq!(Zipf::new(2, 1.0).sample_distinct(&mut rng, 5).len(), 2);
    }
}
