//! Priority levels: how a cluster's load is split between the endpoints of each
//! `LocalityLbEndpoints.priority`, as Envoy's `LoadBalancerBase` splits it.
//!
//! Each level's *health* is the share of its endpoints that are available (healthy and not
//! ejected) times the overprovisioning factor (the `ClusterLoadAssignment`'s
//! `policy.overprovisioning_factor`, 140 by default, i.e. 1.4), capped at 100. Levels are
//! given load in priority order, each as much as its health allows, until 100% is assigned; when
//! the levels' health adds up to less than 100 it is scaled up (normalized) first, so all the
//! load still goes somewhere. A level is in *panic* when fewer than the panic threshold (50% by
//! default) of its endpoints are available and the levels together are not fully healthy: it
//! then balances over all of its endpoints. When every level is in panic, load is split by the
//! number of endpoints in each level instead.
//!
//! Not modelled (gloo-core emits none of them): degraded endpoints, and weighting a level's
//! health by endpoint weights (`weighted_priority_health`).

/// The load one priority level gets, and whether it balances over all its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Level {
    /// Percent of requests (0-100; the levels add up to 100 unless no level has endpoints).
    pub(crate) load: u32,
    /// Whether the level is in panic (balance over all its endpoints, available or not).
    pub(crate) panic: bool,
}

/// Envoy's default overprovisioning factor (1.4, in percent).
pub(crate) const DEFAULT_OVERPROVISIONING: u32 = 140;

/// The load of each level, given each level's `(endpoints, available)` counts, the
/// overprovisioning factor in percent and the panic threshold in percent.
pub(crate) fn levels(counts: &[(usize, usize)], overprovisioning: u32, panic: f64) -> Vec<Level> {
    let health: Vec<u32> = counts
        .iter()
        .map(|&(total, available)| {
            if total == 0 {
                0
            } else {
                let h = u64::from(overprovisioning) * available as u64 / total as u64;
                h.min(100) as u32
            }
        })
        .collect();
    let normalized_total = health.iter().sum::<u32>().min(100);
    let mut out: Vec<Level> = counts
        .iter()
        .map(|_| Level {
            load: 0,
            panic: false,
        })
        .collect();
    if normalized_total > 0 {
        let mut remaining = 100u32;
        let mut first_available = None;
        for (i, h) in health.iter().enumerate() {
            if first_available.is_none() && *h > 0 {
                first_available = Some(i);
            }
            let load = remaining.min((h * 100).checked_div(normalized_total).unwrap_or(0));
            out[i].load = load;
            remaining -= load;
        }
        // Rounding leftovers go to the first level with any health.
        if let Some(i) = first_available {
            out[i].load += remaining;
        }
    } else if panic <= 0.0 {
        // Panic mode disabled and nothing available: everything to the first level, which
        // then has no endpoint to give.
        if let Some(first) = out.first_mut() {
            first.load = 100;
        }
        return out;
    }
    for (i, &(total, available)) in counts.iter().enumerate() {
        let available_percent = if total == 0 {
            0.0
        } else {
            100.0 * available as f64 / total as f64
        };
        out[i].panic = normalized_total != 100 && available_percent < panic;
    }
    if !out.is_empty() && out.iter().all(|l| l.panic) {
        // Total panic: load in proportion to each level's number of endpoints.
        let all: usize = counts.iter().map(|c| c.0).sum();
        if all == 0 {
            return out;
        }
        let mut remaining = 100u32;
        for (i, &(total, _)) in counts.iter().enumerate() {
            let load = (100 * total / all) as u32;
            out[i].load = load;
            remaining -= load;
        }
        if let Some(i) = counts.iter().position(|c| c.0 > 0) {
            out[i].load += remaining;
        }
    }
    out
}

/// The level a request goes to: Envoy's `choosePriority` over `hash % 100`.
pub(crate) fn choose(levels: &[Level], hash: u64) -> usize {
    let point = (hash % 100) as u32 + 1;
    let mut aggregate = 0;
    for (i, level) in levels.iter().enumerate() {
        aggregate += level.load;
        if point <= aggregate {
            return i;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(counts: &[(usize, usize)]) -> Vec<u32> {
        levels(counts, DEFAULT_OVERPROVISIONING, 50.0)
            .iter()
            .map(|l| l.load)
            .collect()
    }

    fn panics(counts: &[(usize, usize)]) -> Vec<bool> {
        levels(counts, DEFAULT_OVERPROVISIONING, 50.0)
            .iter()
            .map(|l| l.panic)
            .collect()
    }

    // The cases of Envoy's load_balancer_impl_test.cc (`LoadBalancerBaseTest`), with the
    // default overprovisioning factor.

    #[test]
    fn a_healthy_first_level_takes_everything() {
        assert_eq!(loads(&[(1, 1), (1, 1)]), [100, 0]);
        // 72% available is 100% healthy with the 1.4 factor.
        assert_eq!(loads(&[(25, 18), (1, 1)]), [100, 0]);
    }

    #[test]
    fn a_partly_healthy_level_spills_to_the_next() {
        // 1 of 2 available: health 70, the next level takes the other 30.
        assert_eq!(loads(&[(2, 1), (2, 2)]), [70, 30]);
        // 1 of 3: health 46.
        assert_eq!(loads(&[(3, 1), (1, 1)]), [46, 54]);
        // Three levels: 70, then 30 of the 70 the second could take.
        assert_eq!(loads(&[(2, 1), (2, 1), (2, 2)]), [70, 30, 0]);
        assert!(panics(&[(2, 1), (2, 2)]).iter().all(|p| !p));
    }

    #[test]
    fn an_unavailable_first_level_fails_over() {
        assert_eq!(loads(&[(1, 0), (1, 1)]), [0, 100]);
        assert_eq!(loads(&[(2, 0), (0, 0), (3, 3)]), [0, 0, 100]);
        // Fully healthy overall: the empty first level is not in panic.
        assert_eq!(panics(&[(1, 0), (1, 1)]), [false, false]);
    }

    #[test]
    fn partial_health_everywhere_is_normalized() {
        // Health 14 and 84 (10% and 60% of 10 endpoints): 98 in all, scaled to 100 (the
        // rounding leftover goes to the first level). Only the first level is in panic.
        assert_eq!(loads(&[(10, 1), (10, 6)]), [15, 85]);
        assert_eq!(panics(&[(10, 1), (10, 6)]), [true, false]);
    }

    #[test]
    fn total_panic_splits_by_endpoint_counts() {
        // Nothing available anywhere: by the number of endpoints.
        assert_eq!(loads(&[(1, 0), (3, 0)]), [25, 75]);
        assert_eq!(loads(&[(1, 0), (2, 0)]), [34, 66]);
        assert_eq!(panics(&[(1, 0), (2, 0)]), [true, true]);
        // Every level below the panic threshold, though some are available: the same.
        assert_eq!(loads(&[(10, 1), (10, 2)]), [50, 50]);
    }

    #[test]
    fn the_overprovisioning_factor_scales_health() {
        // Factor 1.0: 1 of 2 available is health 50.
        let l = levels(&[(2, 1), (1, 1)], 100, 50.0);
        assert_eq!([l[0].load, l[1].load], [50, 50]);
        // Factor 2.0: 1 of 2 available is fully healthy.
        let l = levels(&[(2, 1), (1, 1)], 200, 50.0);
        assert_eq!([l[0].load, l[1].load], [100, 0]);
    }

    #[test]
    fn no_panic_threshold_and_nothing_available_loads_the_first_level() {
        let l = levels(&[(1, 0), (1, 0)], DEFAULT_OVERPROVISIONING, 0.0);
        assert_eq!([l[0].load, l[1].load], [100, 0]);
        assert!(!l[0].panic);
    }

    #[test]
    fn choose_walks_the_cumulative_loads() {
        let l = loads(&[(2, 1), (2, 2)]);
        let levels: Vec<Level> = l.iter().map(|&load| Level { load, panic: false }).collect();
        // hash % 100 + 1 in 1..=70 is the first level, 71..=100 the second.
        assert_eq!(choose(&levels, 0), 0);
        assert_eq!(choose(&levels, 69), 0);
        assert_eq!(choose(&levels, 70), 1);
        assert_eq!(choose(&levels, 199), 1);
        let share = (0..1000u64).filter(|h| choose(&levels, *h) == 1).count();
        assert_eq!(share, 300);
    }
}
