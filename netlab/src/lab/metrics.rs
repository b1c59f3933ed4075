//! The figures a scenario reports, computed from time series; pure functions, tested on
//! hand-made series.

/// Seconds from `start` until the first sample at or after `start` that satisfies `pred`.
pub fn time_until(series: &[(f64, f64)], start: f64, pred: impl Fn(f64) -> bool) -> Option<f64> {
    series.iter().find(|&&(t, v)| t >= start && pred(v)).map(|&(t, _)| t - start)
}

/// How many times the value changes along the series.
pub fn changes(series: &[(f64, f64)]) -> usize {
    series.windows(2).filter(|w| w[0].1 != w[1].1).count()
}

/// The samples with `from <= t < to`.
pub fn window(series: &[(f64, f64)], from: f64, to: f64) -> Vec<f64> {
    series.iter().filter(|&&(t, _)| t >= from && t < to).map(|&(_, v)| v).collect()
}

/// Mean of the samples in `[from, to)`, `None` if there are none.
pub fn mean_in(series: &[(f64, f64)], from: f64, to: f64) -> Option<f64> {
    let w = window(series, from, to);
    (!w.is_empty()).then(|| w.iter().sum::<f64>() / w.len() as f64)
}

/// Smallest sample in `[from, to)`.
pub fn min_in(series: &[(f64, f64)], from: f64, to: f64) -> Option<f64> {
    window(series, from, to).into_iter().reduce(f64::min)
}

/// The `p`-th percentile (0..=1, nearest rank) of `values`.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Growth of a cumulative counter over `[from, to]`: the last sample at or before `to` minus
/// the last sample at or before `from` (or the first sample when none is that early).
pub fn counter_delta(series: &[(f64, f64)], from: f64, to: f64) -> Option<f64> {
    let at = |t: f64| series.iter().rev().find(|&&(ts, _)| ts <= t).map(|&(_, v)| v);
    let start = at(from).or_else(|| series.first().map(|&(_, v)| v))?;
    let end = at(to)?;
    Some(end - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_down_and_recovery_times() {
        let level =
            [(0.5, 3.0), (1.5, 3.0), (10.5, 3.0), (11.5, 2.0), (12.5, 1.0), (30.5, 1.0), (33.5, 2.0), (36.5, 3.0)];
        assert_eq!(time_until(&level, 10.0, |l| l < 3.0), Some(1.5));
        assert_eq!(time_until(&level, 30.0, |l| l >= 3.0), Some(6.5));
        assert_eq!(time_until(&level, 37.0, |l| l >= 3.0), None);
        assert_eq!(changes(&level), 4);
        assert_eq!(min_in(&level, 10.0, 30.0), Some(1.0));
    }

    #[test]
    fn windows_means_percentiles_and_counters() {
        let s = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 10.0)];
        assert_eq!(window(&s, 1.0, 3.0), vec![2.0, 3.0]);
        assert_eq!(mean_in(&s, 0.0, 3.0), Some(2.0));
        assert_eq!(mean_in(&s, 5.0, 6.0), None);
        assert_eq!(percentile(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.5), Some(3.0));
        assert_eq!(percentile(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.95), Some(5.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(counter_delta(&s, 1.5, 3.0), Some(8.0));
        assert_eq!(counter_delta(&s, -1.0, 0.5), Some(0.0));
    }
}
