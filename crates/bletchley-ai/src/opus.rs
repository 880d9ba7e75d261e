//! Opus in Ogg. symphonia demuxes it (its Ogg reader knows the Opus mapping: pre-skip, channel
//! count) but has no Opus decoder; this adapter gives it the pure-Rust `opus-decoder` crate
//! (RFC 8251 conformant, no unsafe, no FFI). Output is 48 kHz, as Opus decodes natively; the
//! stream's pre-skip (the encoder's look-ahead) is dropped so that times start where the
//! recording does.

use opus_decoder::OpusDecoder;
use symphonia::core::audio::{
    AsAudioBufferRef, AudioBuffer, AudioBufferRef, Channels, Signal, SignalSpec,
};
use symphonia::core::codecs::{
    CODEC_TYPE_OPUS, CodecDescriptor, CodecParameters, Decoder, DecoderOptions, FinalizeResult,
};
use symphonia::core::errors::{Result, decode_error, unsupported_error};
use symphonia::core::formats::Packet;
use symphonia::core::support_codec;

/// Opus always decodes at this rate here.
const RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz, per channel.
const MAX_FRAME: usize = 5760;

/// A symphonia decoder for mono and stereo Opus streams.
pub struct OpusAdapter {
    params: CodecParameters,
    decoder: OpusDecoder,
    channels: usize,
    /// Samples per channel still to drop from the start (the pre-skip).
    skip: usize,
    /// Interleaved output of the last packet.
    pcm: Vec<f32>,
    buf: AudioBuffer<f32>,
}

impl Decoder for OpusAdapter {
    fn try_new(params: &CodecParameters, _options: &DecoderOptions) -> Result<Self> {
        let channels = params.channels.map_or(1, |c| c.count());
        let layout = match channels {
            1 => Channels::FRONT_LEFT,
            2 => Channels::FRONT_LEFT | Channels::FRONT_RIGHT,
            _ => return unsupported_error("Opus with more than two channels (multistream)"),
        };
        let Ok(decoder) = OpusDecoder::new(RATE, channels) else {
            return unsupported_error("this Opus stream's layout");
        };
        Ok(OpusAdapter {
            params: params.clone(),
            decoder,
            channels,
            skip: params.delay.unwrap_or(0) as usize,
            pcm: vec![0.0; MAX_FRAME * channels],
            buf: AudioBuffer::new(MAX_FRAME as u64, SignalSpec::new(RATE, layout)),
        })
    }

    fn supported_codecs() -> &'static [CodecDescriptor] {
        &[support_codec!(CODEC_TYPE_OPUS, "opus", "Opus")]
    }

    fn reset(&mut self) {
        self.decoder.reset();
    }

    fn codec_params(&self) -> &CodecParameters {
        &self.params
    }

    fn decode(&mut self, packet: &Packet) -> Result<AudioBufferRef<'_>> {
        self.buf.clear();
        // A decoder bug must not take the process down with it (rule 7): a panic inside the
        // codec reads as a packet that does not decode, and the decoder starts afresh.
        let (decoder, pcm) = (&mut self.decoder, &mut self.pcm);
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decoder.decode_float(&packet.data, pcm, false)
        }));
        let n = match decoded {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return decode_error("opus: a packet does not decode"),
            Err(_) => {
                self.decoder.reset();
                return decode_error("opus: a packet made the decoder fail");
            }
        };
        let n = n.min(MAX_FRAME);
        let dropped = self.skip.min(n);
        self.skip -= dropped;
        let kept = n - dropped;
        self.buf.render_reserved(Some(kept));
        for ch in 0..self.channels {
            let plane = self.buf.chan_mut(ch);
            for (i, s) in plane.iter_mut().enumerate().take(kept) {
                *s = self.pcm[(dropped + i) * self.channels + ch];
            }
        }
        Ok(self.buf.as_audio_buffer_ref())
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> AudioBufferRef<'_> {
        self.buf.as_audio_buffer_ref()
    }
}

/// symphonia's codecs, and Opus.
pub fn codecs() -> &'static symphonia::core::codecs::CodecRegistry {
    static CODECS: std::sync::OnceLock<symphonia::core::codecs::CodecRegistry> =
        std::sync::OnceLock::new();
    CODECS.get_or_init(|| {
        let mut r = symphonia::core::codecs::CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut r);
        r.register_all::<OpusAdapter>();
        r
    })
}
