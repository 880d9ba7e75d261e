//! Voice activity: which 20 ms frames carry sound worth decoding.
//!
//! Whisper invents text over silence (the known hallucination), and decoding silence costs time,
//! so stretches without sound are skipped before the model sees them. The detector is an energy
//! gate: a frame counts as active when it is louder than an absolute floor (-50 dBFS) and clearly
//! above the window's own noise floor (its 10th-percentile frame, +10 dB). It errs towards
//! "active": the model's own no-speech probability makes the final call.

/// Samples per frame (20 ms at 16 kHz).
pub const FRAME: usize = 320;
const ABSOLUTE_FLOOR_DB: f32 = -50.0;
const ABOVE_NOISE_DB: f32 = 10.0;

fn frame_db(frame: &[f32]) -> f32 {
    let energy = frame.iter().map(|x| x * x).sum::<f32>() / frame.len().max(1) as f32;
    10.0 * energy.max(1e-12).log10()
}

/// One flag per 20 ms frame of `samples`.
pub fn active_frames(samples: &[f32]) -> Vec<bool> {
    let dbs: Vec<f32> = samples.chunks(FRAME).map(frame_db).collect();
    if dbs.is_empty() {
        return Vec::new();
    }
    let mut sorted = dbs.clone();
    sorted.sort_by(f32::total_cmp);
    let noise = sorted[sorted.len() / 10];
    let threshold = ABSOLUTE_FLOOR_DB.max(noise + ABOVE_NOISE_DB);
    // A recording that is all one level (a tone, steady noise) has no quieter floor to compare
    // against: call it active if it is loud at all, and let the model decide.
    let flat = sorted[sorted.len() - 1] - noise < ABOVE_NOISE_DB;
    dbs.iter()
        .map(|&db| {
            if flat {
                db > ABSOLUTE_FLOOR_DB
            } else {
                db > threshold
            }
        })
        .collect()
}

/// The first active sample of `samples`, if any.
pub fn first_active(samples: &[f32]) -> Option<usize> {
    active_frames(samples)
        .iter()
        .position(|&a| a)
        .map(|f| f * FRAME)
}

/// Where to end a window that holds a silence of at least `min_len` samples after some sound:
/// a little after the sound stops. `None` when there is no such silence.
pub fn long_silence(samples: &[f32], min_len: usize) -> Option<usize> {
    let active = active_frames(samples);
    let need = min_len.div_ceil(FRAME);
    let mut heard = false;
    let mut run_start = 0;
    let mut run = 0;
    for (i, &a) in active.iter().enumerate() {
        if a {
            heard = true;
            run = 0;
        } else if heard {
            if run == 0 {
                run_start = i;
            }
            run += 1;
            if run >= need {
                // 200 ms of the silence stays with the speech before it.
                return Some(((run_start + 10) * FRAME).min(samples.len()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_then_tone() {
        let mut s = vec![0f32; 16_000];
        s.extend((0..16_000).map(|i| 0.3 * (i as f32 * 0.1).sin()));
        let first = first_active(&s).expect("the tone is active");
        assert!((16_000..16_000 + FRAME).contains(&first), "{first}");
        assert_eq!(first_active(&vec![0f32; 48_000]), None);
    }

    #[test]
    fn a_long_pause_after_sound_is_found() {
        let tone = |n: usize| {
            (0..n)
                .map(|i| 0.3 * (i as f32 * 0.1).sin())
                .collect::<Vec<_>>()
        };
        let mut s = vec![0f32; 32_000];
        s.extend(tone(16_000));
        s.extend(vec![0f32; 64_000]);
        s.extend(tone(16_000));
        let cut = long_silence(&s, 56_000).expect("a 4 s pause");
        assert!((48_000..48_000 + 4_000).contains(&cut), "{cut}");
        // Leading silence does not count, and a short pause is not long.
        assert_eq!(long_silence(&s[..60_000], 56_000), None);
        assert_eq!(long_silence(&s, 80_000), None);
    }

    #[test]
    fn quiet_hiss_is_not_active() {
        let s: Vec<f32> = (0..32_000)
            .map(|i| 0.0005 * (((i * 7919) % 97) as f32 / 97.0 - 0.5))
            .collect();
        assert_eq!(first_active(&s), None);
    }
}
