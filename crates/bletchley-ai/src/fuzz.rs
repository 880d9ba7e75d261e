//! Entry points for the fuzzer (`bletchley-fuzz`): audio containers as an upload brings them,
//! and the CTranslate2 weight file an operator imports. Each returns a short signature of the
//! outcome; a panic (or an allocation far beyond the input) is the finding.

use candle_core::Device;

use crate::audio::AudioStream;

fn outcome<T>(r: crate::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e
            .to_string()
            .chars()
            .take_while(|c| !c.is_ascii_digit() && *c != '"' && *c != '\'')
            .take(60)
            .collect(),
    }
}

/// The extension hints an upload may carry, chosen by the input's first byte.
const HINTS: [Option<&str>; 7] = [
    None,
    Some("wav"),
    Some("ogg"),
    Some("opus"),
    Some("mp3"),
    Some("flac"),
    Some("m4a"),
];

/// A recording decoded whole, as the transcription job reads one.
pub fn audio(data: &[u8]) -> String {
    let (hint, bytes) = match data.split_first() {
        Some((&b, rest)) => (HINTS[b as usize % HINTS.len()], rest),
        None => (None, data),
    };
    outcome(AudioStream::from_bytes(bytes.to_vec(), hint).and_then(|s| s.read_all()))
}

/// A CTranslate2 `model.bin`, parsed and turned into tensors.
pub fn ct2_model(data: &[u8]) -> String {
    outcome(crate::whisper::ct2::load(data, &Device::Cpu))
}

/// A SentencePiece model as an operator's Marian directory brings it, read and used to cut a
/// text that touches normalisation, unknown characters and runs of spaces.
pub fn sentencepiece(data: &[u8]) -> String {
    outcome(
        crate::marian::SentencePiece::from_bytes(data)
            .and_then(|m| m.pieces("  El   ﬁn de ＡÑO — 你好 ✓ palabra")),
    )
}

fn wav(samples: &[i16]) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A tiny model.bin in CTranslate2's version-6 layout: one f32 variable and one alias.
fn model_bin() -> Vec<u8> {
    let mut out = Vec::new();
    let s = |out: &mut Vec<u8>, t: &str| {
        out.extend_from_slice(&(t.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
        out.push(0);
    };
    out.extend_from_slice(&6u32.to_le_bytes());
    s(&mut out, "WhisperSpec");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    s(&mut out, "decoder/embeddings/weight");
    out.push(2);
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&2u32.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&1u32.to_le_bytes());
    s(&mut out, "decoder/alias");
    s(&mut out, "decoder/embeddings/weight");
    out
}

/// Valid inputs to start from, per entry point.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "audio" => {
            let tone: Vec<i16> = (0..800).map(|i| ((i * 97) % 2000) as i16 - 1000).collect();
            let mut out = vec![[vec![1u8], wav(&tone)].concat()];
            for magic in [
                &b"OggS\x00\x02"[..],
                b"fLaC",
                b"ID3\x04\x00",
                b"\xff\xfb\x90\x00",
            ] {
                out.push([&[0u8][..], magic, &[0u8; 64]].concat());
            }
            out
        }
        "ct2_model" => vec![model_bin()],
        "sentencepiece" => vec![
            include_bytes!("../tests/fixtures/marian-tiny/source.spm").to_vec(),
            include_bytes!("../tests/fixtures/marian-tiny/target.spm").to_vec(),
        ],
        _ => Vec::new(),
    }
}
