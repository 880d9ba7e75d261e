//! Whisper in process: loading either model format, and transcribing or translating a stream.

mod align;
mod attention_rows;
mod bf16;
pub mod config;
pub(crate) mod ct2;
pub mod decode;
mod hf;
pub mod mel;
pub mod model;
mod pages;
mod rows;
mod simd;
pub mod tokens;
mod transcribe;

use std::path::{Path, PathBuf};

use candle_core::Device;

pub use align::Word;
pub use model::WeightFormat;
pub use simd::{Isa, check_isa_env, isa_ceiling, isa_in_use};
pub use transcribe::{Progress, Segment, Task, Timing, TranscribeOptions, Transcript};

use crate::error::{Error, Result};
use config::TokenTables;
use model::Whisper;
use tokens::Vocabulary;

/// Which on-disk layout a model directory uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// `model.bin` as CTranslate2 (faster-whisper) writes it.
    CTranslate2,
    /// `config.json` and `*.safetensors` as Hugging Face transformers writes them.
    HuggingFace,
}

/// A loaded model and its vocabulary, ready to transcribe.
pub struct SpeechModel {
    /// The network.
    pub whisper: Whisper,
    /// The tokenizer and special tokens.
    pub vocab: Vocabulary,
    /// The layout it was read from.
    pub format: ModelFormat,
    /// Where it was read from.
    pub dir: PathBuf,
}

/// Tells which layout a directory holds, or why it holds none.
pub fn detect_format(dir: &Path) -> Result<ModelFormat> {
    if !dir.is_dir() {
        return Err(Error::ModelMissing {
            dir: dir.to_owned(),
        });
    }
    if dir.join("model.bin").is_file() {
        return Ok(ModelFormat::CTranslate2);
    }
    let has_safetensors = std::fs::read_dir(dir)
        .map_err(|e| Error::Io {
            path: dir.to_owned(),
            source: e,
        })?
        .filter_map(|e| e.ok())
        .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"));
    if has_safetensors && dir.join("config.json").is_file() {
        return Ok(ModelFormat::HuggingFace);
    }
    Err(Error::Model(format!(
        "{} holds neither model.bin (CTranslate2) nor config.json with *.safetensors (Hugging Face)",
        dir.display()
    )))
}

fn token_tables(dir: &Path, name: &str) -> Result<TokenTables> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: {e}", path.display()))),
        Err(_) => Ok(TokenTables::default()),
    }
}

impl SpeechModel {
    /// Loads a model directory of either layout onto the CPU (or the first GPU when built with
    /// the `cuda` feature).
    pub fn load(dir: &Path, weights: WeightFormat) -> Result<Self> {
        Self::load_on(dir, weights, default_device())
    }

    /// Loads a model directory onto the device named as `--device` names it (see
    /// [`device_by_name`]), or where [`SpeechModel::load`] would when none is named: the one
    /// choice the command line and the job worker both make.
    pub fn load_named(dir: &Path, weights: WeightFormat, device: Option<&str>) -> Result<Self> {
        match device {
            Some(name) => Self::load_on(dir, weights, device_by_name(name)?),
            None => Self::load(dir, weights),
        }
    }

    /// Loads a model directory onto a chosen device (see [`device_by_name`]). On a GPU the
    /// weights are held in f32 whatever `weights` says: the rounded formats exist to spare the
    /// CPU's memory traffic, and f32 is the reference.
    pub fn load_on(dir: &Path, weights: WeightFormat, device: Device) -> Result<Self> {
        let format = detect_format(dir)?;
        let (w, mut config) = match format {
            ModelFormat::CTranslate2 => {
                let path = dir.join("model.bin");
                let bytes = std::fs::read(&path).map_err(|e| Error::Io { path, source: e })?;
                ct2::load(&bytes, &device)?
            }
            ModelFormat::HuggingFace => hf::load(dir, &device)?,
        };
        let tables = match format {
            ModelFormat::CTranslate2 => token_tables(dir, "config.json")?,
            ModelFormat::HuggingFace => token_tables(dir, "generation_config.json")?,
        };
        config.suppress_ids = if tables.suppress_ids.is_empty() {
            tables.suppress_tokens
        } else {
            tables.suppress_ids
        };
        config.suppress_ids_begin = if tables.suppress_ids_begin.is_empty() {
            tables.begin_suppress_tokens
        } else {
            tables.suppress_ids_begin
        };
        config.alignment_heads = tables.alignment_heads;
        let vocab = Vocabulary::load(dir, config.multilingual())?;
        let whisper = Whisper::from_weights(w, config, weights, device)?;
        Ok(SpeechModel {
            whisper,
            vocab,
            format,
            dir: dir.to_owned(),
        })
    }

    /// Where the model runs, as `--device` names it (`cpu`, `cuda:0`): worth saying, since
    /// a CUDA build falls back to the CPU when no GPU answers.
    pub fn device_name(&self) -> String {
        match self.whisper.device.location() {
            candle_core::DeviceLocation::Cpu => format!("cpu ({})", cpu_kernels()),
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
        }
    }
}

/// The vector kernels a CPU transcription runs here: the instruction set (under
/// `BLETCHLEY_ISA`) and whether the encoder multiplies in bf16. Printed beside every timing,
/// since the same model runs at very different speeds on each.
pub fn cpu_kernels() -> String {
    let isa = simd::isa_in_use();
    if bf16::Bf16Kernel::detect().is_some() {
        format!("{}, bf16 encoder", isa.name())
    } else {
        isa.name().to_owned()
    }
}

/// The device a person names (`cpu`, `cuda`, or `cuda:N` for the Nth GPU), with a clear
/// error when this build has no CUDA support or no such GPU is present.
pub fn device_by_name(name: &str) -> Result<Device> {
    let ordinal = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => 0,
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown device {other:?}: use cpu, cuda or cuda:N"
                )));
            }
        },
    };
    if !cfg!(feature = "cuda") {
        return Err(Error::Invalid(format!(
            "device {name:?}: this build has no CUDA support; build with `--features cuda`"
        )));
    }
    Device::new_cuda(ordinal).map_err(|e| {
        // candle's driver errors carry a backtrace after the first line: not for people.
        let e = e.to_string();
        let reason = e.lines().next().unwrap_or_default();
        Error::Invalid(format!(
            "device {name:?}: no usable GPU {ordinal}: {reason}"
        ))
    })
}

/// The device models run on: the first CUDA GPU when built for one and present, else the CPU.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    Device::Cpu
}
