//! Recordings in: any container and codec symphonia decodes, any rate and channel count, out as a
//! stream of 16 kHz mono samples.
//!
//! Decoding is pulled: the transcriber asks for the samples of its next window, and only what it
//! has not yet consumed stays in memory, so hours of audio pass through in bounded memory.

use std::fs::File;
use std::io::{Cursor, Read, Seek};
use std::path::Path;

use rubato::{FftFixedIn, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::{Error, Result};
use crate::whisper::mel::SAMPLE_RATE;

/// Lowest sample rate accepted (below any telephone codec).
const MIN_RATE: u32 = 1_000;
/// Highest sample rate accepted (above any studio format).
const MAX_RATE: u32 = 768_000;

/// Consecutive undecodable packets after which a file is called corrupt rather than damaged.
const MAX_BAD_PACKETS: usize = 64;

/// A decoded, resampled, mono stream, read on demand.
pub struct AudioStream {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    resampler: Option<FftFixedIn<f32>>,
    /// Mono samples at the source rate, waiting for a full resampler chunk.
    pending: Vec<f32>,
    /// Output samples of the resampler still to drop (its delay).
    delay_left: usize,
    /// 16 kHz samples not yet consumed; the first is at `offset`.
    buffer: Vec<f32>,
    offset: usize,
    /// Source samples decoded in all (for the exact output length at the end).
    source_samples: u64,
    produced: u64,
    source_rate: u32,
    finished: bool,
    packets_decoded: usize,
}

struct ReadSeek<R>(R);

impl<R: Read + Seek + Send + Sync> MediaSource for ReadSeek<R> {
    fn is_seekable(&self) -> bool {
        true
    }
    fn byte_len(&self) -> Option<u64> {
        None
    }
}
impl<R: Read> Read for ReadSeek<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
impl<R: Seek> Seek for ReadSeek<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl AudioStream {
    /// Opens a file; the extension is a hint only, the content decides.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::Io {
            path: path.to_owned(),
            source: e,
        })?;
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_owned);
        Self::from_source(Box::new(file), ext.as_deref())
    }

    /// Decodes bytes held in memory (an item's content).
    pub fn from_bytes(bytes: Vec<u8>, extension: Option<&str>) -> Result<Self> {
        Self::from_source(Box::new(ReadSeek(Cursor::new(bytes))), extension)
    }

    fn from_source(source: Box<dyn MediaSource>, extension: Option<&str>) -> Result<Self> {
        let mss = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = extension {
            hint.with_extension(ext);
        }
        let probed = contained("reading the container", || {
            symphonia::default::get_probe().format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
        })?
        .map_err(|e| Error::Audio(describe(e)))?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| Error::Audio("the file holds no audio track".into()))?;
        let source_rate = track
            .codec_params
            .sample_rate
            .ok_or_else(|| Error::Audio("the audio track states no sample rate".into()))?;
        // Real recordings run from telephone rates to studio ones; a rate far outside says the
        // header is damaged, and resampling from it would take minutes for a few samples.
        if !(MIN_RATE..=MAX_RATE).contains(&source_rate) {
            return Err(Error::Audio(format!(
                "the audio track states a sample rate of {source_rate} Hz (a recording has {MIN_RATE} to {MAX_RATE})"
            )));
        }
        let decoder = contained("opening the codec", || {
            crate::opus::codecs().make(&track.codec_params, &DecoderOptions::default())
        })?
        .map_err(|e| Error::Audio(format!("no decoder for this codec: {}", describe(e))))?;
        let track_id = track.id;
        let resampler = if source_rate as usize == SAMPLE_RATE {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(source_rate as usize, SAMPLE_RATE, 1024, 2, 1).map_err(
                    |e| Error::Audio(format!("cannot resample from {source_rate} Hz: {e}")),
                )?,
            )
        };
        let delay_left = resampler.as_ref().map_or(0, |r| r.output_delay());
        Ok(AudioStream {
            format,
            decoder,
            track: track_id,
            resampler,
            pending: Vec::new(),
            delay_left,
            buffer: Vec::new(),
            offset: 0,
            source_samples: 0,
            produced: 0,
            source_rate,
            finished: false,
            packets_decoded: 0,
        })
    }

    /// The rate of the recording before resampling.
    pub fn source_rate(&self) -> u32 {
        self.source_rate
    }

    /// Whether the whole recording has been decoded.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The number of 16 kHz samples known so far (all of them once finished).
    pub fn known_len(&self) -> usize {
        self.offset + self.buffer.len()
    }

    /// Decodes until sample `end` is available or the recording ends.
    pub fn fill_to(&mut self, end: usize) -> Result<()> {
        let mut bad = 0;
        while !self.finished && self.known_len() < end {
            let format = &mut self.format;
            let next = contained("reading a packet", || format.next_packet());
            let next = match next {
                Ok(n) => n,
                Err(e) => {
                    self.finished = true;
                    return Err(e);
                }
            };
            let packet = match next {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.finish()?;
                    break;
                }
                Err(SymError::ResetRequired) => {
                    self.finish()?;
                    break;
                }
                Err(e) => {
                    if self.packets_decoded == 0 {
                        return Err(Error::Audio(describe(e)));
                    }
                    // A damaged tail: keep what decoded.
                    self.finish()?;
                    break;
                }
            };
            if packet.track_id() != self.track {
                continue;
            }
            let decoder = &mut self.decoder;
            let result = contained("decoding a packet", || {
                decoder.decode(&packet).map(|d| {
                    let spec = *d.spec();
                    let mut interleaved = SampleBuffer::<f32>::new(d.capacity() as u64, spec);
                    interleaved.copy_interleaved_ref(d);
                    (spec, interleaved)
                })
            });
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    self.finished = true;
                    return Err(e);
                }
            };
            let (spec, interleaved) = match result {
                Ok(d) => d,
                Err(SymError::DecodeError(e)) => {
                    bad += 1;
                    if bad > MAX_BAD_PACKETS {
                        return Err(Error::Audio(format!(
                            "more than {MAX_BAD_PACKETS} packets in a row do not decode: {e}"
                        )));
                    }
                    continue;
                }
                Err(e) => return Err(Error::Audio(describe(e))),
            };
            bad = 0;
            self.packets_decoded += 1;
            let channels = spec.channels.count().max(1);
            let mono = interleaved
                .samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32);
            self.pending.extend(mono);
            self.drain_pending()?;
        }
        Ok(())
    }

    fn drain_pending(&mut self) -> Result<()> {
        let Some(rs) = self.resampler.as_mut() else {
            self.source_samples += self.pending.len() as u64;
            self.produced += self.pending.len() as u64;
            self.buffer.append(&mut self.pending);
            return Ok(());
        };
        let mut start = 0;
        loop {
            let need = rs.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let out = rs
                .process(&[&self.pending[start..start + need]], None)
                .map_err(|e| Error::Audio(format!("resampling: {e}")))?;
            self.source_samples += need as u64;
            start += need;
            Self::push_resampled(
                &mut self.buffer,
                &mut self.delay_left,
                &mut self.produced,
                &out[0],
            );
        }
        self.pending.drain(..start);
        Ok(())
    }

    fn push_resampled(
        buffer: &mut Vec<f32>,
        delay_left: &mut usize,
        produced: &mut u64,
        out: &[f32],
    ) {
        let skip = (*delay_left).min(out.len());
        *delay_left -= skip;
        buffer.extend_from_slice(&out[skip..]);
        *produced += (out.len() - skip) as u64;
    }

    fn finish(&mut self) -> Result<()> {
        self.finished = true;
        if self.packets_decoded == 0 {
            return Ok(());
        }
        if let Some(rs) = self.resampler.as_mut() {
            self.source_samples += self.pending.len() as u64;
            let expected = self.source_samples * SAMPLE_RATE as u64 / self.source_rate as u64;
            // An empty tail (the recording ended on a chunk boundary) is not a partial chunk:
            // the resampler refuses a zero-length input, so flush it instead.
            let mut input = Some(std::mem::take(&mut self.pending)).filter(|p| !p.is_empty());
            // Flush the resampler until the output covers the input.
            for _ in 0..16 {
                if self.produced >= expected {
                    break;
                }
                let out = match input.take() {
                    Some(p) => rs.process_partial(Some(&[p.as_slice()]), None),
                    None => rs.process_partial(None::<&[&[f32]]>, None),
                }
                .map_err(|e| Error::Audio(format!("resampling: {e}")))?;
                Self::push_resampled(
                    &mut self.buffer,
                    &mut self.delay_left,
                    &mut self.produced,
                    &out[0],
                );
            }
            if self.produced > expected {
                let extra = (self.produced - expected) as usize;
                let keep = self.buffer.len().saturating_sub(extra);
                self.buffer.truncate(keep);
                self.produced = expected;
            }
        }
        Ok(())
    }

    /// Samples `[start, start + len)`, shorter at the end of the recording. Samples before
    /// `start` may be forgotten afterwards (see [`AudioStream::forget_before`]).
    pub fn samples(&mut self, start: usize, len: usize) -> Result<Vec<f32>> {
        self.fill_to(start + len)?;
        if start < self.offset {
            return Err(Error::Invalid(format!(
                "audio before sample {} was already released",
                self.offset
            )));
        }
        let from = (start - self.offset).min(self.buffer.len());
        let to = (from + len).min(self.buffer.len());
        Ok(self.buffer[from..to].to_vec())
    }

    /// Releases every sample before `start`.
    pub fn forget_before(&mut self, start: usize) {
        if start > self.offset {
            let n = (start - self.offset).min(self.buffer.len());
            self.buffer.drain(..n);
            self.offset += n;
        }
    }

    /// Reads the whole recording (for short clips and tests).
    pub fn read_all(mut self) -> Result<Vec<f32>> {
        self.fill_to(usize::MAX)?;
        Ok(self.buffer)
    }
}

/// Runs a call into the demuxers and decoders, which panic on some damaged files (a zero time
/// base, states their authors thought unreachable): a panic there reads as a file that does not
/// decode, never as a crash of the worker or the server.
fn contained<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        Error::Audio(format!(
            "the recording is damaged: its decoder failed while {what}"
        ))
    })
}

fn describe(e: SymError) -> String {
    match e {
        SymError::Unsupported(what) => format!("unsupported format or codec ({what})"),
        SymError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends before any audio".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono PCM WAV file.
    fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
        let data = (samples.len() * 2) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data.to_le_bytes());
        for s in samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    #[test]
    fn a_recording_that_ends_on_a_resampler_chunk_boundary_decodes_whole() {
        // 20 chunks of 1024 source samples exactly, and one sample more or less.
        for n in [20 * 1024, 20 * 1024 + 1, 20 * 1024 - 1] {
            let tone: Vec<i16> = (0..n)
                .map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16)
                .collect();
            let mut s = AudioStream::from_bytes(wav(22_050, &tone), Some("wav")).expect("open");
            s.fill_to(usize::MAX).expect("decode");
            assert!(s.finished());
            let want = n as u64 * SAMPLE_RATE as u64 / 22_050;
            assert_eq!(s.known_len() as u64, want, "{n} source samples");
        }
    }
}
