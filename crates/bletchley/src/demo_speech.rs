//! The demo's recording: a short telephone call in Spanish, ingested into GCHQ's SIGINT
//! collection so that its item view shows the transcript beside the English translation,
//! each word lit as it is spoken. It is transcribed here when a speech model is installed
//! (`bletchley models fetch`); otherwise the job waits and `serve` runs it once one is.
//!
//! The call was synthesised with espeak-ng (`-v es -s 150`), a pause of 0.8 s after each
//! sentence, and encoded with opusenc at 20 kbit/s (25 s, 54 KB) from this text:
//!
//! > Hola, soy Marco. Escucha bien, no tengo mucho tiempo. El envío llega al puerto de
//! > Valencia el jueves por la noche. Tres camiones cruzarán la frontera antes del amanecer.
//! > Llama a Elena al número seis cero cero, uno dos tres, cuatro cinco seis. No hables con
//! > nadie de la reunión en la estación central.

use anyhow::Result;
use bletchley_policy::Marking;
use bletchley_store::{IngestOptions, NewItem, Platform};

const CALL: &[u8] = include_bytes!("demo_intercept.opus");

/// The recording's title in the demo.
pub const TITLE: &str = "intercept-0412-marco.opus";

/// What became of the recording.
pub struct Recording {
    /// Its item id.
    pub id: String,
    /// Whether it was transcribed now (a speech model is installed).
    pub transcribed: bool,
}

/// Ingests the call as carol (GCHQ) and transcribes it when a model is installed.
pub fn ingest_recording(p: &mut Platform) -> Result<Recording> {
    let opts = IngestOptions {
        collection: "gchq/sigint".into(),
        marking: Marking::parse("SECRET")?,
        authority: Some("DEMO-WARRANT-001".into()),
        retain_until_ms: None,
        justification: Some("demo data".into()),
        priority: Default::default(),
    };
    let stored = bletchley_index::ingest::ingest(
        p,
        "carol",
        &opts,
        vec![NewItem {
            title: TITLE.into(),
            content: CALL.to_vec(),
        }],
    )?;
    let id = stored.ids.into_iter().next().unwrap_or_default();
    let model_dir = bletchley_ai::models::speech_model_dir(
        &crate::speech::default_models_dir(),
        bletchley_ai::models::DEFAULT_SPEECH_MODEL,
    )
    .ok()
    .filter(|d| bletchley_ai::whisper::detect_format(d).is_ok());
    let Some(model_dir) = model_dir else {
        return Ok(Recording {
            id,
            transcribed: false,
        });
    };
    crate::speech::configure_jobs(p);
    let done = crate::demo_cyber::run_jobs_now(p, Some(model_dir))?;
    Ok(Recording {
        id,
        transcribed: done.done > 0 && done.failed == 0,
    })
}
