//! The log-mel front end, as faster-whisper computes it.
//!
//! 25 ms Hann windows every 10 ms (n_fft 400, hop 160 at 16 kHz), power spectrum, Slaney-scale mel
//! filters (librosa's defaults, which Whisper was trained with), `log10(max(x, 1e-10))`, clamped
//! to 8 below the maximum, then `(x + 4) / 4`. Frames past the end of the audio are zeros in
//! feature space, as faster-whisper pads them. The maximum is taken per window rather than over the
//! whole recording, so that hours of audio can stream through; on windows with speech the two agree.

use std::sync::Arc;

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

/// Samples per second the model hears.
pub const SAMPLE_RATE: usize = 16_000;
/// Samples between frames.
pub const HOP: usize = 160;
/// FFT size.
pub const N_FFT: usize = 400;
/// Frames of one 30-second window.
pub const WINDOW_FRAMES: usize = 3000;
/// Samples of one 30-second window.
pub const WINDOW_SAMPLES: usize = WINDOW_FRAMES * HOP;

/// A reusable front end for one mel size.
pub struct MelFrontEnd {
    n_mels: usize,
    /// Per mel bin: the first FFT bin with weight, and the weights from there.
    filters: Vec<(usize, Vec<f32>)>,
    window: Vec<f32>,
    fft: Arc<dyn realfft::RealToComplex<f32>>,
}

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        m * f_sp
    }
}

/// librosa.filters.mel(sr=16000, n_fft=400, n_mels, htk=False, norm="slaney").
fn slaney_filters(n_mels: usize) -> Vec<(usize, Vec<f32>)> {
    let bins = N_FFT / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins)
        .map(|i| i as f64 * SAMPLE_RATE as f64 / N_FFT as f64)
        .collect();
    let lo = hz_to_mel(0.0);
    let hi = hz_to_mel(SAMPLE_RATE as f64 / 2.0);
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|m| {
            let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
            let row: Vec<f32> = fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - mel_f[m]) / (mel_f[m + 1] - mel_f[m]);
                    let upper = (mel_f[m + 2] - f) / (mel_f[m + 2] - mel_f[m + 1]);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect();
            let first = row.iter().position(|&w| w > 0.0).unwrap_or(0);
            let last = row.iter().rposition(|&w| w > 0.0).map_or(first, |l| l + 1);
            (first, row[first..last].to_vec())
        })
        .collect()
}

impl MelFrontEnd {
    /// A front end with `n_mels` bins (80 for every Whisper but large-v3's 128).
    pub fn new(n_mels: usize) -> Self {
        let window = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        MelFrontEnd {
            n_mels,
            filters: slaney_filters(n_mels),
            window,
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Features [n_mels × 3000] (row-major) of one window.
    ///
    /// `samples` holds the window's audio with `N_FFT / 2` samples of context on each side
    /// (`before` says how many of those leading samples are real; missing ones are reflected, as
    /// at the start of a recording); `content_frames` says how many frames hold audio.
    pub fn window(&self, samples: &[f32], before: usize, content_frames: usize) -> Vec<f32> {
        let half = N_FFT / 2;
        let frames = content_frames.min(WINDOW_FRAMES);
        let mut padded = Vec::with_capacity(samples.len() + half);
        if before < half {
            // Reflect about the first real sample, as torch.stft(center=True) does.
            let first = &samples[before..];
            for i in (1..=half - before).rev() {
                padded.push(first.get(i).copied().unwrap_or(0.0));
            }
        }
        padded.extend_from_slice(samples);
        padded.resize(frames * HOP + N_FFT, 0.0);
        let mut input = vec![0f32; N_FFT];
        let mut spectrum = vec![Complex::new(0f32, 0f32); N_FFT / 2 + 1];
        let mut scratch = self.fft.make_scratch_vec();
        let mut out = vec![0f32; self.n_mels * WINDOW_FRAMES];
        let mut max = f32::NEG_INFINITY;
        let mut power = vec![0f32; N_FFT / 2 + 1];
        for f in 0..frames {
            let start = f * HOP;
            for (i, x) in input.iter_mut().enumerate() {
                *x = padded[start + i] * self.window[i];
            }
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, (first, weights)) in self.filters.iter().enumerate() {
                let e: f32 = weights
                    .iter()
                    .zip(&power[*first..])
                    .map(|(w, p)| w * p)
                    .sum();
                let v = e.max(1e-10).log10();
                max = max.max(v);
                out[m * WINDOW_FRAMES + f] = v;
            }
        }
        for m in 0..self.n_mels {
            for f in 0..frames {
                let v = &mut out[m * WINDOW_FRAMES + f];
                *v = (v.max(max - 8.0) + 4.0) / 4.0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_filters_match_librosa() {
        // Values from librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): row 0 peaks at bin 1
        // with 0.02486259, row 79 ends at bin 200.
        let f = slaney_filters(80);
        assert_eq!(f[0].0, 1);
        assert!((f[0].1[0] - 0.024_862_59).abs() < 1e-5, "{}", f[0].1[0]);
        assert_eq!(f[79].0 + f[79].1.len(), 200);
    }

    #[test]
    fn silence_is_flat() {
        let fe = MelFrontEnd::new(80);
        let samples = vec![0f32; WINDOW_SAMPLES + N_FFT];
        let mel = fe.window(&samples, N_FFT / 2, 100);
        // log10(1e-10) = -10 everywhere, so (x + 4) / 4 = -1.5 on content frames, 0 after.
        assert!((mel[0] + 1.5).abs() < 1e-6);
        assert_eq!(mel[200], 0.0);
    }
}
