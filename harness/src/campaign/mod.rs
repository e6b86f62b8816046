//! Campaigns: a matrix of tests, each cell run several times with an
//! expectation — the weak modes must be caught, the strong mode must pass.
//! `faultline campaign` runs one (the binary drives the runs; this module
//! holds everything else).
//!
//! # Layout
//! - [`spec`]: the campaign file (cells = test tables + `runs`, `expect`,
//!   `min-detections`, `vary`), and the built-in demo.
//! - [`outcome`]: run records, whether a cell met its expectation,
//!   detection rates and the binomial odds of a miss.
//! - [`docs`]: `campaign.json`, `campaign.html`, `junit.xml` and the
//!   printed summary table.

pub mod docs;
pub mod outcome;
pub mod spec;

pub use docs::CampaignRecord;
pub use outcome::{CellOutcome, CellVerdict, RunRecord};
pub use spec::{Campaign, CampaignError, Cell, Expect};

/// The seed of run `run` (from 0) of the cell named `cell`: fixed by the
/// campaign's seed, so a campaign repeats exactly, and different across
/// cells and runs. (FNV-1a over the name, mixed with splitmix64.)
pub fn run_seed(campaign_seed: u64, cell: &str, run: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cell.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = campaign_seed
        .wrapping_add(h)
        .wrapping_add((run as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_seeds_repeat_and_differ_across_cells_and_runs() {
        assert_eq!(run_seed(7, "a", 0), run_seed(7, "a", 0));
        assert_ne!(run_seed(7, "a", 0), run_seed(7, "a", 1));
        assert_ne!(run_seed(7, "a", 0), run_seed(7, "b", 0));
        assert_ne!(run_seed(7, "a", 0), run_seed(8, "a", 0));
    }
}
