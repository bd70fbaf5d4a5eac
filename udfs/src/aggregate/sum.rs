//! Compensated summation shared by the streaming aggregates.

/// A compensated (Neumaier) running sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sum {
    pub(crate) sum: f64,
    pub(crate) compensation: f64,
}

impl Sum {
    #[inline(always)]
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        // With an infinite or NaN term the compensation is meaningless; the sum carries it.
        if t.is_finite() {
            self.compensation += if self.sum.abs() >= x.abs() {
                (self.sum - t) + x
            } else {
                (x - t) + self.sum
            };
        }
        self.sum = t;
    }

    #[inline(always)]
    pub(crate) fn merge(&mut self, other: Sum) {
        self.add(other.sum);
        self.add(other.compensation);
    }

    #[inline(always)]
    pub(crate) fn value(self) -> f64 {
        self.sum + self.compensation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_recovers_lost_bits() {
        let mut s = Sum::default();
        for x in [1e16, 1.0, -1e16, 1.0] {
            s.add(x);
        }
        assert_eq!(s.value(), 2.0);
        let mut a = Sum::default();
        a.add(1e16);
        a.add(1.0);
        let mut b = Sum::default();
        b.add(-1e16);
        b.add(1.0);
        a.merge(b);
        assert_eq!(a.value(), 2.0);
        let mut inf = Sum::default();
        inf.add(f64::INFINITY);
        inf.add(1.0);
        assert_eq!(inf.value(), f64::INFINITY);
    }
}
