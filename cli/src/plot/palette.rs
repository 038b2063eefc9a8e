//! Colours shared by every figure: a white-to-navy ramp for log-densities (so that red sample
//! points stand out on every band) and a qualitative cycle for curves and chains.

use plotters::style::RGBColor;

/// Colour of sample points drawn over a density.
pub const POINTS: RGBColor = RGBColor(214, 39, 40);

/// Ramp anchors from low to high log-density (a sequential blue scale).
const RAMP: [RGBColor; 6] = [
    RGBColor(247, 251, 255),
    RGBColor(198, 219, 239),
    RGBColor(120, 180, 214),
    RGBColor(49, 130, 189),
    RGBColor(8, 81, 156),
    RGBColor(8, 38, 94),
];

/// Colour of band `level` out of `levels` (0 = lowest).
pub fn band(level: usize, levels: usize) -> RGBColor {
    let t = if levels <= 1 { 1.0 } else { level.min(levels - 1) as f64 / (levels - 1) as f64 };
    let pos = t * (RAMP.len() - 1) as f64;
    let i = (pos.floor() as usize).min(RAMP.len() - 2);
    let f = pos - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    let (a, b) = (RAMP[i], RAMP[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Qualitative colours for series (curves, chains), cycled.
const SERIES: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

pub fn series(i: usize) -> RGBColor {
    SERIES[i % SERIES.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_runs_from_first_to_last_anchor() {
        assert_eq!(band(0, 10), RAMP[0]);
        assert_eq!(band(9, 10), RAMP[5]);
        assert_eq!(band(1, 1), RAMP[5]);
        // Strictly darker (smaller red+green+blue) as the level rises.
        let sums: Vec<u32> = (0..10).map(|l| band(l, 10)).map(|c| c.0 as u32 + c.1 as u32 + c.2 as u32).collect();
        assert!(sums.windows(2).all(|w| w[1] < w[0]), "{sums:?}");
    }
}
