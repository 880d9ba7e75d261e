//! Transcribes recordings on the CPU and on another device (a GPU, in a `--features cuda`
//! build) and compares the two: the same text and segment times within a frame, and how long
//! each took. It is how the CUDA build is checked on a machine that has a GPU; CI has none.
//!
//! ```text
//! cargo run --release -p bletchley-ai --features cuda --example device_check -- \
//!     MODEL_DIR cuda FILE...
//! ```
//! The exit status is 0 when every transcript matches, 1 when one differs, 2 on an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use bletchley_ai::whisper::device_by_name;
use bletchley_ai::{AudioStream, SpeechModel, TranscribeOptions, Transcript, WeightFormat};

/// Segment times of the two devices may differ by this much (seconds: one timestamp token
/// is 0.02 s) and still count as the same transcript.
const TIME_SLACK: f64 = 0.021;

fn transcribe(model: &SpeechModel, file: &Path, beam: usize) -> Result<(Transcript, f64), String> {
    let mut audio = AudioStream::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let opts = TranscribeOptions {
        beam_size: beam,
        ..TranscribeOptions::default()
    };
    let t = Instant::now();
    let out = model
        .transcribe(&mut audio, &opts, &mut |_| {})
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((out, t.elapsed().as_secs_f64()))
}

fn same(a: &Transcript, b: &Transcript) -> bool {
    a.text() == b.text()
        && a.segments.len() == b.segments.len()
        && a.segments.iter().zip(&b.segments).all(|(x, y)| {
            (x.start - y.start).abs() <= TIME_SLACK && (x.end - y.end).abs() <= TIME_SLACK
        })
}

fn run(model_dir: &Path, device: &str, files: &[PathBuf]) -> Result<bool, String> {
    let t = Instant::now();
    let cpu = SpeechModel::load_on(model_dir, WeightFormat::F32, candle_core::Device::Cpu)
        .map_err(|e| format!("loading on the CPU: {e}"))?;
    println!("loaded on cpu in {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let dev = device_by_name(device).map_err(|e| e.to_string())?;
    let other = SpeechModel::load_on(model_dir, WeightFormat::F32, dev)
        .map_err(|e| format!("loading on {device}: {e}"))?;
    println!("loaded on {device} in {:.2} s", t.elapsed().as_secs_f64());
    let mut all_same = true;
    for file in files {
        for beam in [1, 5] {
            let (a, a_s) = transcribe(&cpu, file, beam)?;
            // Twice on the device: the first run pays for kernel loading and warm-up.
            let (_, first_s) = transcribe(&other, file, beam)?;
            let (b, b_s) = transcribe(&other, file, beam)?;
            let ok = same(&a, &b);
            all_same &= ok;
            println!(
                "{} beam {beam}: {:.1} s of audio; cpu {a_s:.2} s (encoder {:.2}, decoder {:.2}); \
                 {device} {b_s:.2} s (encoder {:.2}, decoder {:.2}; first run {first_s:.2} s); {}",
                file.display(),
                a.duration,
                a.timing.encoder_s,
                a.timing.decoder_s,
                b.timing.encoder_s,
                b.timing.decoder_s,
                if ok { "SAME" } else { "DIFFERENT" },
            );
            if !ok {
                println!("  cpu:     {}", a.text());
                println!("  {device}: {}", b.text());
                for (x, y) in a.segments.iter().zip(&b.segments) {
                    println!(
                        "  {:.2}-{:.2} vs {:.2}-{:.2}",
                        x.start, x.end, y.start, y.end
                    );
                }
            } else {
                println!("  text: {}", a.text());
            }
        }
    }
    Ok(all_same)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: device_check MODEL_DIR DEVICE FILE...");
        return ExitCode::from(2);
    }
    let files: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
    match run(Path::new(&args[0]), &args[1], &files) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
