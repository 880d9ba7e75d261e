//! The operator's switch for translating documents into English at ingest.

use bletchley_audit::Outcome;

use super::{Actor, Platform};
use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// The guarded `meta` key naming the engine documents are translated with.
const TEXT_TRANSLATION: &str = "translation.engine";

impl Platform {
    /// The engine documents are translated into English with at ingest (`apertium`), if the
    /// operator turned it on.
    pub fn text_translation(&self) -> Result<Option<String>> {
        Ok(self
            .catalog
            .meta(TEXT_TRANSLATION)?
            .filter(|m| !m.is_empty()))
    }

    /// Turns translation at ingest on with `engine`, or off. Only the operator; audited. The
    /// setting sits in the guarded `meta` table.
    pub fn set_text_translation(&mut self, engine: Option<&str>) -> Result<()> {
        // `auto`: per language, an imported Marian model, else Apertium's pair; `apertium`
        // is what directories made before Marian models were taken hold, and means the same.
        if let Some(e) = engine
            && !matches!(e, "auto" | "apertium")
        {
            return Err(Error::Invalid(format!(
                "translation engine {e:?}: expected auto (a Marian model where one is imported, else Apertium)"
            )));
        }
        self.catalog
            .set_meta(TEXT_TRANSLATION, engine.unwrap_or_default())?;
        self.record(
            Actor::Operator,
            "settings.translation",
            vec![engine.unwrap_or("off").to_owned()],
            None,
            Outcome::Allowed,
            None,
        )
    }
}
